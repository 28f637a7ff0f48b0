class UserError(Exception):
    """Base of every error a user can fix (bad config, missing binary or file, bad bundle).

    The CLI prints these as one line naming the fix; each package derives its own base from it.
    """
