"""The serve engine answers each request as soon as its own sentences are edited, not when the pass ends."""

import threading

from edgewrite.edit import Edit
from edgewrite.serve import Engine, Job


class _OutOfOrder:
    """Edits the second sentence first, then waits until the engine has answered its request."""

    name, batches, runtime = "fake", True, None

    def __init__(self) -> None:
        self.released = threading.Event()

    def budget(self, text: str) -> int:
        return len(text.split())

    def edit(self, task: str, texts: list[str], done=None) -> list[Edit]:  # noqa: ANN001
        edits = [Edit(output=t.upper(), raw=t.upper(), new_tokens=2) for t in texts]
        done(1, edits[1])
        assert self.released.wait(10), "the first request was not answered before the pass ended"
        done(0, edits[0])
        return edits

    def close(self) -> None:
        pass


def test_a_request_is_answered_when_its_sentences_are_done() -> None:
    editor = _OutOfOrder()
    engine = Engine(editor, max_batch=8)
    engine.close()  # drive the pass by hand
    slow, fast = Job("edit", task="grammar", texts=["she go home."]), Job("edit", task="grammar", texts=["he go."])
    worker = threading.Thread(target=engine._edits, args=([slow, fast],))
    worker.start()
    texts, (usage, timings) = fast.future.result(timeout=10)
    assert texts == ["HE GO."] and not slow.future.done()
    assert usage["completion_tokens"] == 2 and timings["predicted_n"] == 2
    editor.released.set()
    worker.join(10)
    assert slow.future.result(timeout=1)[0] == ["SHE GO HOME."]
