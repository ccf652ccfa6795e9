"""Device profiles: the registry of named profiles, and the builders of the bundled ones, whose
JSON files (<device>-<precision>.json) sit in this folder."""
