"""English: the engine's messages, said by id (domain/messages.py), and the words and joins they are said with.

The English text is the engine's own: `str(Message)` renders it from this table, so the command line, the HTTP API,
the logs and the report files print exactly this. A photo's refusals are written where they are raised
(utils/images.py, below this layer) and listed here by id.
"""

from domain.locales.en.provenance import MESSAGES as PROVENANCE_MESSAGES
from utils.images import IMAGE_FORMATS
from utils.images import MESSAGES as IMAGE_MESSAGES

# The engine's message ids (a `Message`'s `code`) with their English templates.
MESSAGES: dict[str, str] = {
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
    "demo.not_in_set": "This case is not in the demo set: in demo mode only the demo cases are answered, with "
                       "example answers, and no AI provider is asked. The demo cases: {cases}.",
    "demo.not_loaded": "This is a demo case, but the demo pack is not loaded: run `python cli.py demo load`, or press "
                       "Try the demo on the assessment page.",
    "demo.no_history": "The demo pack is pinned in the history, which is off (HISTORY_ENABLED=false): demo mode then "
                       "answers the demo cases from the pack itself, with nothing to load or remove.",
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
    "assist.bad_refine": "The model did not return a description (it answered in another form): try again, or edit "
                         "the text yourself.",
    "assist.bad_explain": "The model did not return a plain explanation for the patient (it answered in another "
                          "form): try again.",
    # Background jobs (domain/jobs.py, storage/jobs/, storage/jobs/redis.py, engine/jobs.py).
    "job.unreadable": "This job is encrypted with another DATA_ENCRYPTION_KEY and cannot be read here: set the key "
                      "it was stored with (DATA_ENCRYPTION_KEY takes several keys, comma-separated), or submit the "
                      "case again.",
    "job.store_down": "Background jobs are unavailable: {store} does not answer. Assess the case directly, or try "
                      "again in a moment.",
    "job.restarted": "The app restarted while this job was waiting or running.",
    "job.process_gone": "The app process running this job stopped; run it again.",
    "job.never_started": "The app process that took this job stopped before it started; run it again.",
    "job.too_many_queued": "You already have {limit} background jobs waiting to run: wait for some to finish, or assess this case directly.",
    "job.unexpected": "Unexpected error ({error}).",
    # Photos (utils/images.py).
    **IMAGE_MESSAGES,
    **PROVENANCE_MESSAGES,
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
    # Double reading (domain/readings.py, storage/readings.py, engine/second_reading.py).
    "reading.no_class": "The second reader's answer named no class.",
    "reading.unavailable": "The second reading did not come.",
    "reading.interrupted": "The second reading was interrupted (the app restarted or its job failed to run).",
    "reading.note_too_long": "The note is longer than {limit} characters: shorten it.",
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
    "answer.too_long": "answer cut off at {kb:g} KB: far longer than a complete answer",
}

# A word parameter's values (domain.messages.WORD_PARAMS), by group: "word.<group>.<value>".
# What a reader who is not an administrator reads instead (ui/i18n.py): no variable, `.env` or internal address.
PLAIN: dict[str, str] = {
    "provider.not_configured.plain": "{title} is not set up: ask your administrator.",
    "provider.not_configured_others.plain": "{title} is not set up (ask your administrator). Set up now: {others}.",
    "provider.auth.plain": "{title} refused the app's access key (HTTP {status}): tell your administrator.",
    "provider.unknown_model.plain": "{title} does not know the model the app was set up with (HTTP 404): tell your "
                                    "administrator.",
    "provider.unreachable.plain": "Could not reach {title}: try again in a moment, and tell your administrator if it "
                                  "goes on.",
    "provider.unreachable_url.plain": "Could not reach {title}: try again in a moment, and tell your administrator if "
                                      "it goes on.",
    "demo.not_loaded.plain": "This is a demo case, but the demo cases are not loaded: press Try the demo on the "
                             "assessment page.",
    "demo.no_history.plain": "The demo cases are kept in the history, which is off here: they are answered without "
                             "loading.",
    "job.unreadable.plain": "This job was stored under another encryption key and cannot be read here: submit the "
                            "case again, or ask your administrator.",
}

WORDS: dict[str, str] = {
    "word.field.description": "description",
    "word.field.body_site": "body site",
    "word.field.duration": "duration",
    "word.field.sex": "sex",
    "word.job_store.redis": "the shared job store (Redis, REDIS_URL)",
    "word.job_store.database": "the database that keeps the jobs",
    "word.answer_part.label": "label",
    "word.answer_part.similar": "similar",
    **{f"word.image_format.{key}": word for key, word in IMAGE_FORMATS.items()},
}

# How a message is put together: further failures after the first ("<first> Also: <second> <third>"), and
# how a list parameter (environment variable names) is joined.
JOINS: dict[str, str] = {
    "message.also": "{first} Also: {others}",
    "message.list_join": " and ",
}

TEXT: dict[str, str] = {**MESSAGES, **PLAIN, **WORDS, **JOINS}
