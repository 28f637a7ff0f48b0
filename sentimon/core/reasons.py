"""Why a record is refused: the dead-letter reason codes, shared by the stream worker (its DLQ records and
metric label) and `sentimon score` (its error records), so the same input gets the same code from both."""

# Stable strings, used as the DLQ record's `reason` and a metric label (keep the set small).
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_OBJECT = "not_object"
MISSING_TEXT = "missing_text"
EMPTY_TEXT = "empty_text"
MISSING_ID = "missing_id"
WRONG_TYPE = "wrong_type"
OVERSIZE = "oversize"
INVALID_TS = "invalid_ts"
FUTURE_TS = "future_ts"
TOO_MANY_ENTITIES = "too_many_entities"
LONE_SURROGATE = "lone_surrogate"  # a string (or key) with an unpaired \ud800-\udfff escape: not UTF-8
NON_FINITE_NUMBER = "non_finite_number"  # NaN / Infinity literals, or a number too large for a float
TOO_DEEP = "too_deep"
FIELD_TOO_LONG = "field_too_long"
# Set by the pipeline, not by parsing:
SCORING_FAILED = "scoring_failed"  # the scorer failed on this one text
NON_FINITE_SCORE = "non_finite_score"  # the model returned NaN or infinity for this text
PROCESSING_FAILED = "processing_failed"  # an unexpected error isolated to this record (detail: the exception)
UNSUPPORTED_LANGUAGE = "unsupported_language"  # with inference.unsupported_language = "dead_letter"
REASONS = (
    INVALID_UTF8, INVALID_JSON, NOT_OBJECT, MISSING_TEXT, EMPTY_TEXT, MISSING_ID, WRONG_TYPE, OVERSIZE,
    INVALID_TS, FUTURE_TS, TOO_MANY_ENTITIES, LONE_SURROGATE, NON_FINITE_NUMBER, TOO_DEEP, FIELD_TOO_LONG,
    SCORING_FAILED, NON_FINITE_SCORE, PROCESSING_FAILED, UNSUPPORTED_LANGUAGE,
)  # fmt: skip
