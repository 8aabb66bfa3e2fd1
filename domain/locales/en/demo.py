"""English: the demo pack on the pages (engine/demo.py): the offer without a provider, the case picker, and what every
demo answer says of itself."""

TEXT: dict[str, str] = {
    "demo.provider": "Demo pack (example answers)",
    "demo.example": "Example answer written for the demo: not a model's output and not a diagnosis.",
    "demo.offer": "No AI provider is set up yet. You can still see the whole app: the demo pack has {count} example "
                  "cases, {photos} of them with photos, answered with example answers written for the demo. No "
                  "network is needed.",
    "demo.try": "Try the demo",
    "demo.session": "Demo: the demo cases are answered with example answers written for the demo, not by a model. "
                    "No AI provider is asked, and no second reading is made.",
    "demo.leave": "Leave the demo",
    "demo.pick": "Pick a demo case",
    "demo.pick_placeholder": "Choose a demo case",
    "demo.pick_help": "Its description fills the field, or its photo is set; then press Assess.",
    "demo.kind.text": "text",
    "demo.kind.image": "photo",
    "demo.option": "{kind} · {text}",
    "demo.cases_heading": "The demo cases",
    "demo.history_note": "{n} of these are example answers written for the demo ({provider}): not a model's output "
                         "and not a diagnosis.",
    "demo.qa_note": "Demo mode: the demo pack is the only provider here, and its answers are examples written for the "
                    "demo, not a model's output.",
}
