"""Telegram front end of the survey bot, and a local Bot API emulator for tests and the demo."""
