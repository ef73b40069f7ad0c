"""Key-pair sources: fixed and TEST-ONLY keys, when the RSA check may be skipped, the pool."""
import threading
import time

import pytest
from conftest import TOKEN_KEY_FILES
from cryptography.hazmat.primitives.asymmetric import rsa

from byoklib import primitives
from byoklib.mock.keypairs import (TEST_ONLY_KEY_FILES, KeyPairPool, fixed_key_pairs,
                                   generate_key_pairs)


def eventually(condition, seconds: float = 5) -> bool:
    """Poll `condition()` until it holds (True) or `seconds` pass (False)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return bool(condition())


def test_fixed_key_pairs_cycles_through_paths_and_pem(token_key_pairs):
    source = fixed_key_pairs([TOKEN_KEY_FILES[0], TOKEN_KEY_FILES[1].read_bytes()])
    numbers = [source().private_numbers() for _ in range(3)]
    assert numbers[0] == token_key_pairs[0].private_numbers()
    assert numbers[1] == token_key_pairs[1].private_numbers()
    assert numbers[2] == numbers[0]
    single = fixed_key_pairs([TOKEN_KEY_FILES[2]])
    assert single() is single()     # each PEM parsed once, then the same key object
    with pytest.raises(ValueError):
        fixed_key_pairs([])


def test_a_fixed_source_shows_how_many_keys_it_holds_never_a_key():
    pem = TOKEN_KEY_FILES[0].read_bytes()
    source = fixed_key_pairs([pem, TOKEN_KEY_FILES[1]])
    source()   # the first key parsed: held as a key object now
    assert repr(source) == "<key-pair source: 2 fixed keys, cycled>"


def test_the_packaged_test_only_keys_pass_the_full_rsa_check(token_key_pairs):
    # test_only_key_pairs skips cryptography's key check; this is that check, once each.
    assert len(token_key_pairs) == len(TEST_ONLY_KEY_FILES) == len(TOKEN_KEY_FILES)
    for fast, path in zip(token_key_pairs, TOKEN_KEY_FILES):
        checked = primitives.load_private_key(path.read_bytes())
        assert checked.private_numbers() == fast.private_numbers()
        assert checked.key_size == 4096


def test_only_the_packaged_test_only_keys_byte_for_byte_skip_the_rsa_check(monkeypatch):
    from cryptography.hazmat.primitives import serialization

    from byoklib.mock.keypairs import load_token_key
    skipped = []
    real = serialization.load_pem_private_key

    def recording(data, password, *, unsafe_skip_rsa_key_validation=False, **kw):
        skipped.append(unsafe_skip_rsa_key_validation)
        if not unsafe_skip_rsa_key_validation:
            return None   # the full check would take its time: "not an RSA private key"
        return real(data, password, unsafe_skip_rsa_key_validation=True, **kw)

    monkeypatch.setattr(serialization, "load_pem_private_key", recording)
    packaged = TOKEN_KEY_FILES[0].read_bytes()
    for key in (packaged, packaged.decode()):
        assert load_token_key(key).key_size == 4096
    for other in (packaged + b"\n", packaged.replace(b"\n", b"\r\n")):
        with pytest.raises(ValueError):
            load_token_key(other)
    assert skipped == [True, True, False, False]
    fixed_key_pairs([TOKEN_KEY_FILES[1]])()   # a path, as `serve --token-key` reads it
    assert skipped[-1] is True


def test_the_digests_that_may_skip_the_check_are_the_packaged_files():
    import hashlib

    from byoklib import data_path
    from byoklib.mock.keypairs import TEST_ONLY_KEY_SHA256
    assert TEST_ONLY_KEY_SHA256 == {hashlib.sha256(data_path("test-only", name).read_bytes())
                                    .hexdigest() for name in TEST_ONLY_KEY_FILES}


def test_fixed_key_pairs_parses_when_first_used(tmp_path):
    broken = b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    source = fixed_key_pairs([TOKEN_KEY_FILES[0], broken])
    assert isinstance(source(), rsa.RSAPrivateKey)
    with pytest.raises(ValueError):
        source()                    # the broken one, when its turn comes
    with pytest.raises(FileNotFoundError):
        fixed_key_pairs([tmp_path / "missing.pem"])   # files are read at once


def test_default_sources_make_rsa_4096_pairs(monkeypatch):
    """Key Protect's token keys are RSA-4096 (not generated here: slow)."""
    monkeypatch.setattr(primitives, "generate_rsa_private_key", lambda bits: bits)
    assert generate_key_pairs()() == 4096
    with KeyPairPool() as pool:
        assert pool.bits == 4096 and pool.take() == 4096
        assert pool.size == 1   # one pair ready: each made ahead and unused is wasted


@pytest.mark.parametrize("size", [0, -1])
def test_pool_needs_room_for_one_pair(size):
    with pytest.raises(ValueError, match="at least 1"):
        KeyPairPool(size=size, bits=1024)


def test_pool_is_bounded_and_never_repeats_a_pair():
    made = []
    lock = threading.Lock()

    def counting_source():
        key = primitives.generate_rsa_private_key(1024)
        with lock:
            made.append(key)
        return key

    with KeyPairPool(size=2, bits=1024, source=counting_source) as pool:
        taken = [pool.take() for _ in range(5)] + [pool() for _ in range(2)]
        assert eventually(lambda: pool.available() == 2)   # refilled up to the bound
        threading.Event().wait(0.1)
        # Every pair made was taken or waits in the pool: none is made without room.
        assert len(made) == len(taken) + 2
    moduli = [k.private_numbers().public_numbers.n for k in taken]
    assert len(set(moduli)) == len(moduli)
    assert all(k.key_size == 1024 for k in taken)
    assert pool._thread is None   # closed and joined


def test_pool_makes_no_pair_it_has_no_room_for():
    made = []
    with KeyPairPool(size=1, bits=1024,
                     source=lambda: made.append(1) or primitives.generate_rsa_private_key(1024)
                     ) as pool:
        assert eventually(lambda: pool.available() == 1)
        threading.Event().wait(0.2)    # time enough to start another, were it going to
        assert (pool.available(), len(made)) == (1, 1)
        pool.take()                    # taking one makes room: the thread refills it
        assert eventually(lambda: pool.available() == 1)
        assert (pool.available(), len(made)) == (1, 2)


def test_take_hands_out_the_ready_pair_and_close_stops_the_thread():
    made = []

    def source():
        made.append(primitives.generate_rsa_private_key(1024))
        return made[-1]

    pool = KeyPairPool(size=1, bits=1024, source=source).start()
    assert eventually(lambda: pool.available() == 1)
    assert pool.take() is made[0]          # the pair made ahead, not one made inline
    assert eventually(lambda: pool.available() == 1)   # refilled: the thread waits idle
    thread = pool._thread
    assert thread.daemon                   # an unclosed pool does not hold up exit
    pool.close(timeout=5)                  # wakes the refill thread: it does not linger
    assert not thread.is_alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_take_makes_its_own_when_the_refill_thread_failed(token_key_pairs):
    calls = []

    def failing_once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the refill thread's source failed")
        return token_key_pairs[0]

    with KeyPairPool(size=1, bits=1024, source=failing_once) as pool:
        assert eventually(lambda: calls and not pool._thread.is_alive())
        taken = []
        taker = threading.Thread(target=lambda: taken.append(pool.take()), daemon=True)
        taker.start()
        taker.join(5)
        assert taken == [token_key_pairs[0]]   # made inline, not waited for forever


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_taker_waiting_for_a_pair_that_fails_makes_its_own(token_key_pairs):
    release, calls = threading.Event(), []

    def failing_slowly():
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
            raise RuntimeError("the refill thread's source failed")
        return token_key_pairs[0]

    with KeyPairPool(size=1, bits=1024, source=failing_slowly) as pool:
        assert eventually(lambda: calls)
        taken = []
        taker = threading.Thread(target=lambda: taken.append(pool.take()), daemon=True)
        taker.start()
        assert eventually(lambda: pool._awaited)   # waits for the pair in the making
        release.set()
        taker.join(5)
        assert taken == [token_key_pairs[0]]
        assert not pool._awaited   # the next taker may wait for the next pair again


def test_take_waits_for_the_pair_in_the_making_rather_than_make_another():
    release, made = threading.Event(), []

    def slow_source():
        made.append(1)
        if len(made) == 1:
            release.wait(10)            # the refill thread's first pair takes a while
        return primitives.generate_rsa_private_key(1024)

    with KeyPairPool(size=1, bits=1024, source=slow_source) as pool:
        assert eventually(lambda: made)         # the refill thread is making its first
        first = []
        waiter = threading.Thread(target=lambda: first.append(pool.take()))
        waiter.start()
        assert eventually(lambda: pool._awaited)   # the waiter waits for that pair ...
        assert (first, len(made)) == ([], 1)   # ... and does not make its own
        second = pool.take()                    # nobody else may wait for the same pair:
        assert len(made) == 2                   # this one is made inline, at once
        release.set()
        waiter.join(10)
        assert len(first) == 1 and first[0] is not second


def test_pool_take_generates_inline_when_empty():
    with KeyPairPool(size=1, bits=1024) as pool:
        assert isinstance(pool.take(), rsa.RSAPrivateKey)
        assert "bits=1024" in repr(pool)


def test_a_pool_not_started_makes_nothing_until_its_first_take():
    """So a mock that never makes a token generates no key pair (running_server). Its
    first take waits for the pair the refill thread starts on, rather than make a second
    beside it."""
    def pool_threads():
        return sum(t.name == "key-pair-pool" for t in threading.enumerate())

    made_by = []

    def source():
        made_by.append(threading.current_thread().name)
        return len(made_by) - 1

    before = pool_threads()
    pool = KeyPairPool(size=1, source=source)
    try:
        assert (pool.available(), pool_threads(), made_by) == (0, before, [])
        assert pool.take() == 0
        assert pool_threads() == before + 1
        deadline = time.monotonic() + 10
        while pool.available() < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert made_by == ["key-pair-pool", "key-pair-pool"]   # the second made ahead
        assert pool.take() == 1
    finally:
        pool.close()
    assert pool_threads() == before
