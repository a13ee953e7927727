"""The control API's own answers in AWS's words (behaviour §10): the texts Lambda gives for what
no config rule decides (an unknown mapping or function, a mapping in use, a tag on something that
is not a mapping). The texts of a source's rules live in its rules module, those of its answers
(duplicates, a missing source, defaults) in its descriptor (esm.descriptor.ApiAnswers); this
module is the one place for the rest, and builds the errors from them.
"""

from __future__ import annotations

from esm.api.protocol import ApiError
from esm.errors import Problem

INVALID = "InvalidParameterValueException"

NOT_FOUND = "The resource you requested does not exist."
FUNCTION_NOT_FOUND = "Function does not exist"
UPDATE_IN_USE = "Cannot update the event source mapping because it is in use."
DELETE_IN_USE = "Cannot delete the event source mapping because it is in use."
# A mapping of the config file: esm's own text (AWS has no read-only mappings).
READ_ONLY = ("The event source mapping {uuid} ({name}) is declared in the config file; change it there and "
             "restart esm.")
CHANGED_MEANWHILE = ("The event source mapping {uuid} was changed by another request at the same time; get it "
                     "again and retry.")
# TagResource, UntagResource and ListTags on a Lambda ARN that is not an event source mapping's
# (a malformed ARN is refused by the model's pattern first: esm.api.protocol).
NOT_A_MAPPING = "esm serves the tags of event source mappings only (got {arn})."


def not_found() -> ApiError:
    return ApiError("ResourceNotFoundException", NOT_FOUND)


def in_use(deleting: bool) -> ApiError:
    return ApiError("ResourceInUseException", DELETE_IN_USE if deleting else UPDATE_IN_USE)


def refused(problems: list[Problem]) -> ApiError:
    """The answer to a request the config rules refuse: AWS answers one error at a time, so the
    first problem AWS has a text for is answered in its words; else (a rule only esm has) every
    problem, in the form of AWS's request validation."""
    for problem in problems:
        if problem.code:
            return ApiError(problem.code, problem.message)
    count = len(problems)
    return ApiError(INVALID, f"{count} validation error{'s' if count != 1 else ''} detected: "
                    + "; ".join(str(p) for p in problems))
