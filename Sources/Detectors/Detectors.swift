// Detectors: placeholder until its first piece lands.
