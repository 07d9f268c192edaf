"""The investigator's command line: ``provtrace reconstruct | verify | find | quarantine | keygen |
doctor``. Exit codes: 0 ok, 1 a finding, 2 a usage or input error."""
