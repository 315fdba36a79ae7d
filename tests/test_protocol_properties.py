"""Property-based tests of the Python frame codec: whatever bytes arrive, the documented outcome, never a crash.

The documented outcomes: ``decode_frame`` returns a Frame or raises FrameError (or ValueError when the bytes
are not one frame at all); ``FrameDecoder`` never raises and counts every byte sequence as a frame or a drop
reason; the payload readers (HELLO, STATS, sample, LINK_DOWN, ERROR) return a value or raise FrameError.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from host.net import protocol as P

_frames = st.builds(P.Frame, st.sampled_from(list(P.FrameType)), st.integers(0, P.NODE_MAX),
                    st.integers(0, P.NODE_BROADCAST), st.integers(0, 255), st.integers(0, 0xFFFF),
                    st.binary(min_size=1, max_size=64))


def _valid(frame: P.Frame) -> bool:
    try:
        frame.encode()
    except ValueError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_to_a_frame_or_a_frame_error(data: bytes) -> None:
    try:
        frame = P.decode_frame(data)
    except P.FrameError as err:
        assert isinstance(err.status, P.LinkStatus) and err.status in P.DROP_REASONS
    except ValueError as err:
        assert str(err) == "expected exactly one non-empty frame"
        assert not data.rstrip(b"\x00") or 0 in data[:-1]
    else:
        assert isinstance(frame, P.Frame)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), _frames.filter(_valid).map(P.encode_frame)), max_size=8),
       st.integers(1, 17))
def test_the_stream_decoder_accounts_for_every_frame_and_never_raises(pieces: list[bytes], chunk: int) -> None:
    stream = b"".join(pieces) + b"\x00"
    decoder = P.FrameDecoder()
    outcomes = [o for i in range(0, len(stream), chunk) for o in decoder.feed_outcomes(stream[i:i + chunk])]
    delimited = [body for body in stream.split(b"\x00")[:-1] if body]
    assert len(outcomes) == len(delimited)  # every non-empty delimited body is a frame or a counted drop
    assert decoder.frames_ok + decoder.dropped == len(outcomes)
    assert all((status is P.LinkStatus.FRAME_READY) == (frame is not None) for status, frame in outcomes)


@settings(max_examples=300, deadline=None)
@given(_frames.filter(_valid), st.integers(0, 200), st.integers(0, 7))
def test_a_flipped_bit_is_a_frame_error_or_an_intact_frame(frame: P.Frame, position: int, bit: int) -> None:
    encoded = bytearray(P.encode_frame(frame))
    encoded[position % (len(encoded) - 1)] ^= 1 << bit
    decoder = P.FrameDecoder()
    outcomes = decoder.feed_outcomes(bytes(encoded))
    good = [f for status, f in outcomes if f is not None]
    assert all(f == frame for f in good)  # CRC-16 catches every single-bit error: never another frame
    assert good or decoder.dropped


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_payload_readers_return_a_value_or_a_frame_error(payload: bytes) -> None:
    for read in (P.Hello.unpack, P.Stats.unpack, P.parse_sample_payload, P.parse_link_down, P.parse_error):
        try:
            read(payload)
        except P.FrameError:
            pass
