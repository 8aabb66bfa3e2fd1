"""What the engine tells a clinician, as message ids with parameters, and their English text.

An error carries a `Message` (an id from ENGLISH and its values) rather than a finished sentence,
so the UI can say it in the clinician's language (ui/messages.py holds the other languages) while
the command line, the HTTP API, the logs and the report files keep the English text (`str`).

Parameter values are plain str, int or float: they are stored with a failed job and rendered later.
Three kinds of value are not pasted as they are:
- a word (`WORD_PARAMS`: "body site", "a GIF image"...) is a key into the language's WORDS, so it is
  translated too;
- a list (`LIST_PARAMS`: environment variable names) is stored ", "-joined and joined again the
  language's way ("A and B");
- everything else (provider titles, hosts, model names, numbers, variable names) is literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from utils.images import IMAGE_FORMATS
from utils.images import MESSAGES as IMAGE_MESSAGES

Value = str | int | float

# Which word group a word parameter's value is a key of, by parameter name.
WORD_PARAMS = {"field": "field", "format": "image_format", "store": "job_store", "part": "answer_part"}
# Parameters holding a ", "-joined list, and how each language joins it again.
LIST_PARAMS = frozenset({"variables"})
LIST_SEPARATOR = ", "

ENGLISH: dict[str, str] = {
    # Providers: setup, refusals, failures (providers/base.py, engine/core.py).
    "provider.not_configured": "{title} is not configured: set {variables} in .env.",
    "provider.not_configured_others": "{title} is not configured: set {variables} in .env. Configured now: {others}.",
    "provider.timeout": "{title} did not answer in time.",
    "provider.auth": "{title} rejected the API key (HTTP {status}): check {variable} in .env.",
    "provider.auth_server": "{title} rejected the API key (HTTP {status}): check the server's access settings.",
    "provider.unknown_model": "{title} does not know model '{model}' or the URL is wrong (HTTP 404): "
                              "check {variables} in .env.",
    "provider.rate_limited": "{title} is rate limiting requests (HTTP 429).",
    "provider.failed": "{title} failed on its side (HTTP {status}).",
    "provider.refused": "{title} refused the request (HTTP {status}).",
    "provider.dropped": "{title} dropped the connection in the middle of its answer.",
    "provider.unreachable": "Could not reach {title} at {host}: is it running and is {variable} right?",
    "provider.unreachable_url": "Could not reach {title} at {host}: is it running and is the URL right?",
    "provider.unreadable": "{title} answered in a way the app could not read ({error}).",
    # Time budgets (engine/retry.py, engine/routing.py).
    "provider.over_budget": "{title} did not answer within the {budget:g} s time budget.",
    "routing.over_budget": "No answer within the {budget:g} s time budget (tried {titles}).",
    # Demo mode (engine/core.py).
    "demo.store_down": "Demo mode replays pinned cases from the history database, which does not answer now: "
                       "try again in a moment.",
    "demo.not_pinned": "Demo mode replays pinned cases only, and this case is not one of them: choose a pinned case, "
                       "or set DEMO_MODE=false to ask a provider.",
    # The clinician's input (engine/core.py).
    "input.unknown_provider": "Unknown provider '{name}': choose one of {choices}.",
    "input.no_photos": "{title} does not accept photos: choose another provider, or describe the lesion in text.",
    "input.empty": "Give a photo of the lesion or describe it in text (either is enough).",
    "input.text_too_long": "The description has {chars:,} characters; the limit is {limit:,}. Please shorten it.",
    "input.field_too_long": "The {field} has {chars:,} characters; the limit is {limit}. Please shorten it.",
    "input.field_not_text": "The {field} contains characters that are not valid text (a broken encoding?). "
                            "Please type it again.",
    "input.unknown_language": "Unknown language '{language}': use one of {choices}.",
    # Refine and explain (engine/assist.py).
    "assist.nothing_to_refine": "Type the patient's description first: there is nothing to refine.",
    "assist.nothing_to_explain": "This answer names no lesion class, so there is nothing to explain: re-run it first.",
    # Background jobs (domain/jobs.py, storage/jobs/, storage/jobs/redis.py, engine/jobs.py).
    "job.unreadable": "This job is encrypted with another DATA_ENCRYPTION_KEY and cannot be read here: set the key "
                      "it was stored with (DATA_ENCRYPTION_KEY takes several keys, comma-separated), or submit the "
                      "case again.",
    "job.store_down": "Background jobs are unavailable: {store} does not answer. Assess the case directly, or try "
                      "again in a moment.",
    "job.restarted": "The app restarted while this job was waiting or running.",
    "job.process_gone": "The app process running this job stopped; run it again.",
    "job.never_started": "The app process that took this job stopped before it started; run it again.",
    "job.unexpected": "Unexpected error ({error}).",
    "job.too_many_queued": "You already have {limit} background jobs waiting to run: wait for some to finish, or "
                           "assess this case directly.",
    # Photos (utils/images.py).
    **IMAGE_MESSAGES,
    # Batch QA input (qa/batch_input.py, qa/batch.py, qa/report.py). File names, sizes
    # (megabytes() text), columns and a parser's own error text are shown as written.
    "batch.zip_lists_too_many": "The photo archive lists {listed:,} files; the limit is {limit:,}. "
                                "Split it into smaller batches.",
    "batch.zip_unreadable": "The photo archive is not a readable ZIP file ({error}).",
    "batch.zip_too_many": "The photo archive holds {count:,} files; the limit is {limit:,}.",
    "batch.zip_duplicate": "The photo archive holds two files named '{name}': rename or remove one and zip the "
                           "photos again.",
    "batch.zip_too_big": "The photo archive unpacks to {size}; the limit is {limit}. Split it into smaller batches.",
    "batch.zip_bomb": "The photo archive cannot be used: '{name}' would unpack {packed} into {size}, far more than "
                      "photos ever compress. Zip the photo files themselves and try again.",
    "batch.no_directory": "The photo directory {path} does not exist or is not a directory.",
    "batch.directory_too_many": "The photo directory {path} holds more than {limit:,} files: give the folder that "
                                "holds this batch's photos.",
    "batch.csv_encoding": "The cases file is neither UTF-8 nor CP949 text: save it as 'CSV UTF-8'.",
    "batch.csv_too_big": "The cases file is {size}, more than {limit:,} cases can need ({most}): split it into "
                         "smaller batches.",
    "batch.csv_empty": "The cases file is empty: it needs a header row id,text,image,expected.",
    "batch.csv_missing_column": "The cases file lacks the column {columns}: the header must be "
                                "id,text,image,expected (found: {found}).",
    "batch.csv_missing_columns": "The cases file lacks the columns {columns}: the header must be "
                                 "id,text,image,expected (found: {found}).",
    "batch.csv_no_header": "The cases file lacks the columns {columns}: the header must be id,text,image,expected "
                           "(found: nothing).",
    "batch.csv_invalid": "The cases file is not valid CSV at line {line}: {error}.",
    "batch.no_cases": "The cases file has a header but no cases.",
    "batch.too_many_cases": "The cases file has {count:,} cases; the limit is {limit:,} (BATCH_MAX_CASES). Split it "
                            "into smaller batches, or raise the limit (command line: --max-cases {count}).",
    "batch.no_provider": "Choose at least one provider: {choices}.",
    "batch.unknown_provider": "Unknown provider '{name}': choose among {choices}.",
    "batch.cannot_resume": "Cannot resume from {path}: {error}",
    "batch.not_results": "{path} is not a results.csv this tool wrote (its header differs): choose another output "
                         "folder, or run without --resume.",
    "batch.other_provider": "{path} holds rows of another batch (provider '{name}' is not in this one): resume with "
                            "the same cases and providers, or choose another output folder.",
    "batch.other_case": "{path} holds rows of another batch (case '{name}' is not in this one): resume with the "
                        "same cases and providers, or choose another output folder.",
    # A cases file's bad row (qa/batch_input.py): said after "line N (id X): ", several joined by "; ".
    "batch.row_empty": "empty row: give a description in 'text' or a photo file name in 'image'",
    "batch.row_unknown_image": "unknown image file '{image}': it is not among the {count} photos given",
    "batch.row_unknown_image_one": "unknown image file '{image}': it is not among the {count} photo given",
    "batch.row_bad_expected": "bad expected value '{value}': use a class code from 0 to 14 (or leave it empty)",
    "batch.row_repeated_id": "id '{id}' is used again (first on line {first}): ids must be unique",
    # QA reviews (storage/reviews.py).
    "review.unknown_verdict": "Unknown verdict '{verdict}': use one of {choices}.",
    "review.unknown_class": "Unknown expected class {code}: use a class code from 0 to 14.",
    "review.not_in_history": "Assessment {assessment_id} is not in the history: it cannot be reviewed.",
    # What the parser could not read in an answer (domain/parser.py); {rank} is "" or " 2" after "similar".
    "answer.code_not_listed": "{part}{rank}: code {code} is not one of the 15; name used",
    "answer.unknown_class": "{part}{rank}: neither code nor name is one of the 15 classes",
    "answer.name_mismatch": "{part}{rank}: name does not match code {code}; code kept",
    "answer.unknown_name": "{part}{rank}: unknown name for code {code}",
    "answer.no_score": "{part}{rank}: no score",
    "answer.score_clamped": "{part}{rank}: score {score:g} outside 0-100, clamped",
    "answer.no_label": "no label element",
    "answer.no_xml": "no XML in the answer",
    "answer.no_summary": "summary missing or cut off",
    "answer.cut_off": "answer cut off before </root>",
}

# Several failures in one message: "<first> Also: <second> <third>".
ALSO = "{first} Also: {others}"

ENGLISH_WORDS: dict[str, str] = {
    "field.description": "description", "field.body_site": "body site", "field.duration": "duration",
    "field.sex": "sex",
    "job_store.redis": "the shared job store (Redis, REDIS_URL)",
    "job_store.database": "the database that keeps the jobs",
    "answer_part.label": "label", "answer_part.similar": "similar",
    **{f"image_format.{key}": word for key, word in IMAGE_FORMATS.items()},
}


@dataclass(frozen=True)
class Message:
    """One thing to tell the clinician: its id (`code`, a key of ENGLISH), its values, and further failures.

    `str()` is the English text; `render` says it in another language from that language's tables.
    `also` lists further messages said after the first (several providers failed differently).
    """

    code: str
    params: Mapping[str, Value] = field(default_factory=dict)
    also: tuple[Message, ...] = ()

    def __str__(self) -> str:
        return render(self, ENGLISH, ENGLISH_WORDS, also=ALSO, list_join=" and ")

    def record(self) -> dict:
        """The message as plain JSON types (to store it with a job)."""
        return {"code": self.code, "params": dict(self.params), "also": [m.record() for m in self.also]}

    @classmethod
    def from_record(cls, record: Mapping) -> Message:
        """The message `record` describes (the inverse of `record`)."""
        return cls(str(record["code"]), dict(record.get("params") or {}),
                   tuple(cls.from_record(m) for m in record.get("also") or ()))


def render(message: Message, templates: Mapping[str, str], words: Mapping[str, str], *, also: str,
           list_join: str) -> str:
    """`message` in one language: its template from `templates`, word values from `words`, lists joined by
    `list_join`, further messages after `also` (a template with {first} and {others}).

    Raises KeyError for an id or word the tables lack (the caller decides what to fall back to).
    """
    values: dict[str, Value] = {}
    for name, value in message.params.items():
        if name in WORD_PARAMS:
            values[name] = words[f"{WORD_PARAMS[name]}.{value}"]
        elif name in LIST_PARAMS:
            values[name] = list_join.join(str(value).split(LIST_SEPARATOR))
        else:
            values[name] = value
    text = templates[message.code].format(**values)
    if not message.also:
        return text
    others = " ".join(render(m, templates, words, also=also, list_join=list_join) for m in message.also)
    return also.format(first=text, others=others)


class Said(Exception):
    """An exception said as a `Message`: `str(exc)` is the English text (the command line, the API and the logs
    print it), `message` lets the UI say it in the reader's language. Built from a plain string (a caller outside
    the app), `message` is None, `code` and `params` are empty, and the string is all there is to show.
    """

    def __init__(self, message: Message | str) -> None:
        """`message`: what to tell the reader (its English text becomes `str(exc)`)."""
        super().__init__(str(message))
        self.message: Message | None = message if isinstance(message, Message) else None

    @property
    def code(self) -> str:
        """The message id ('' for one built from a plain string)."""
        return self.message.code if self.message else ""

    @property
    def params(self) -> Mapping[str, Value]:
        """The message's values (plain str, int and float)."""
        return self.message.params if self.message else {}


class Refusal(Said, ValueError):
    """Input refused before any work starts (a batch's files, a review's values), said as a `Message`."""


def listed(items: list[str] | tuple[str, ...]) -> str:
    """A list parameter's value (see LIST_PARAMS)."""
    return LIST_SEPARATOR.join(items)
