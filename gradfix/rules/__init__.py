"""gradfix's detectors: one rule per module, found by :func:`gradfix.registry.all_rules`."""
