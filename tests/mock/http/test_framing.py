"""The header block reader of byoklib.mock.http.framing, on bytes in memory."""
import io

import pytest

from byoklib.mock.http.framing import MAX_HEADER_BLOCK, Refusal, read_fields


def fields(block: bytes) -> dict:
    return read_fields(io.BufferedReader(io.BytesIO(block)), MAX_HEADER_BLOCK, 431)


def test_values_lose_their_surrounding_whitespace_and_keep_what_is_inside():
    block = b"Authorization: \t Bearer  t \t \r\nX-Empty:\r\nX-Tabs:\t\t\r\n\r\n"
    assert fields(block) == {b"authorization": b"Bearer  t", b"x-empty": b"",
                             b"x-tabs": b""}


def test_a_list_valued_field_sent_twice_is_joined_and_a_single_valued_one_refused():
    assert fields(b"Accept: a\r\nAccept: b \r\n\r\n") == {b"accept": b"a, b"}
    with pytest.raises(Refusal) as refusal:
        fields(b"Content-Length: 1\r\ncontent-length: 1\r\n\r\n")
    assert refusal.value.status == 400


@pytest.mark.parametrize("line", [
    b"bluemix_instance: i\r\n",       # an underscore: WSGI would read it as bluemix-instance
    b"X-Bell: a\x07b\r\n",            # a control character in a value
    b"X-Bare-LF: a\n",
    b"X-CR: a\rb\r\n",
    b"X-Cut-Short: a",
])
def test_a_line_outside_the_grammar_is_400(line):
    with pytest.raises(Refusal) as refusal:
        fields(b"Host: x\r\n" + line + b"\r\n")
    assert refusal.value.status == 400
