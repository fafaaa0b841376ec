""" "did you mean ...?" for a misspelt name (a flag, a config key, a backbone): the closest of the
valid names by difflib's similarity ratio, the standard library's answer to the same question."""

import difflib


def did_you_mean(word: str, choices, normalise=str) -> str:
    """ " (did you mean X?)" for the choice closest to `word` (compared after `normalise`), or ""."""
    by_form = {}
    for choice in choices:
        by_form.setdefault(normalise(choice), choice)
    close = difflib.get_close_matches(normalise(word), list(by_form), n=1, cutoff=0.6)
    return f" (did you mean {by_form[close[0]]}?)" if close else ""
