"""gradfix's fixes: one rule per module. Installed as ``gradfix.transforms``."""
