"""The reader's review of one study: decisions, undo/redo, drafts and submission."""
