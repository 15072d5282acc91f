"""The Zalo channel: the Zalo Bot Platform API, its emulator, and the survey bot on it."""
