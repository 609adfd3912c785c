"""The Wyoming protocol server (Home Assistant): ``runtime.wyoming.server``."""
