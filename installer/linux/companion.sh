#!/bin/sh
# /usr/bin/companion: the command-line name of the installed bundle in /opt.
exec /opt/ai-review-companion/companion "$@"
