"""Real parts the tests start: Orthanc with the DICOMweb plugin."""
