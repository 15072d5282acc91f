"""The web channel: a page per question for respondents, through the one chat core."""
