"""gradfix's repair operators: one per module, shared by the static fix and the runtime repair. Installed as ``gradfix.transforms``."""
