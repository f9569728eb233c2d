"""A microphone that goes away mid-session is reported, and listening resumes when it is back."""

import queue
import threading

import numpy as np
import pytest

from labeeb.voice import AudioError
from labeeb.voice.audio import MicrophoneSource, Resampler


class FakeStream:
    def __init__(self):
        self.active = True
        self.stopped = 0

    def stop(self):
        self.stopped += 1
        if self.stopped > 1:
            raise RuntimeError("PortAudio: stream already closed")

    def close(self):
        pass


def source_with(stream):
    """A MicrophoneSource on a fake PortAudio stream (no sound card here)."""
    source = MicrophoneSource.__new__(MicrophoneSource)
    source._queue = queue.Queue()
    source._poll = 0.01
    source._closed = threading.Event()
    source._resample = Resampler(16000)
    source._stream = stream
    source.name = "USB mic"
    return source


def test_blocks_flow_then_an_unplugged_device_raises_a_clear_error():
    stream = FakeStream()
    source = source_with(stream)
    source._callback(np.ones((512, 1), np.float32), 512, None, None)
    frames = source.frames()
    assert len(next(frames)) == 512
    stream.active = False  # PortAudio stopped the stream: the device is gone
    with pytest.raises(AudioError, match="'USB mic' stopped sending audio"):
        next(frames)
    source.close()
    source.close()  # closing a vanished device twice is harmless


def test_a_stream_that_silently_stops_calling_back_counts_as_gone(monkeypatch):
    source = source_with(FakeStream())
    monkeypatch.setattr(MicrophoneSource, "STALL_S", 0.05)
    with pytest.raises(AudioError, match="unplugged"):
        next(source.frames())


def test_listen_reopens_the_microphone_until_it_is_back():
    from labeeb_plugins.voice import _reopen

    attempts, waits = [], []

    def open_source():
        attempts.append(1)
        if len(attempts) < 3:
            raise AudioError("cannot open the microphone (no device)")
        return "microphone"

    assert _reopen(open_source, wait=2.0, sleep=waits.append) == "microphone"
    assert waits == [2.0, 2.0]
