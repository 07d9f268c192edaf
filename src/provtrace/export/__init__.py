"""Where sealed segments go: the local archive, the OTLP collector, and the quarantine."""
