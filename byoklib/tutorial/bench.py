"""`make bench`: the speed figures, measured as ratios taken in one run.

Each figure compares the mock (`python -m byoklib serve` in another process) with a floor
measured in the same run on the same machine, so the goals hold whatever the machine's
absolute speed:

- token creation (POST then GET /import_token over HTTP) against one bare RSA-4096 key
  generation with `cryptography` (goal: at most 0.10x); the mock's HSM hides key
  generation behind a pool of pre-generated pairs, as a real HSM does;
- one secure import (`byok_import`: client-side sealing + POST /keys over a keep-alive
  session) against the floor: the cryptography itself (RSA-4096 OAEP encrypt + decrypt,
  AES-GCM seal + open) plus one bare keep-alive round trip of the same size both ways to a
  do-nothing server (goal: at most 1.10x); and against the same `byok_import` sent to a
  bare server that only parses the body, RSA-decrypts the payload, opens the nonce and
  answers as the mock does, so the two differ by the server alone (goal: at most 1.05x);
- wrap and unwrap (the same request to the mock and to a do-nothing server giving the
  mock's answer) against AES-GCM in-process plus that bare round trip (goal: at most
  1.10x each);
- throughput of imports from 2 client threads against 1 (goal: at least 1.6x).

The bare servers and the in-process floors are in `floor`. Timing is for looking at:
nothing here is asserted by the unit tests.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from byoklib import primitives, protocol
from byoklib.client import KeyProtectClient, byok_import
from byoklib.client.token import prepare_secure_import
from byoklib.mock import running_server
from byoklib.mock.keypairs import KeyPairPool, fixed_key_pairs
from byoklib.tutorial.floor import (
    KEYS_PATH,
    TEST_KEYS,
    b64,
    bare_server,
    crypto_step,
    decryption_step,
    import_body,
    median_seconds,
    round_trip,
)
from byoklib.tutorial.timing import measure

# The goals, once: the timing notebook shows its own figures beside them.
TOKEN_GOAL = 0.10      # token creation / one bare RSA-4096 key generation, at most
IMPORT_GOAL = 1.10     # one secure import / its floor (crypto + bare round trip), at most
THREADS_GOAL = 1.6     # imports per second with 2 client threads / with 1, at least


@dataclass
class Figure:
    name: str
    measured: float
    goal: str
    met: bool
    detail: str


# --- token creation ------------------------------------------------------------------------

def bare_rsa4096_generation(repeat: int = 5) -> float:
    return median_seconds(lambda: primitives.generate_rsa_private_key(4096), repeat, warmup=0)


def wait_until_full(pool: KeyPairPool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while pool.available() < pool.size:
        if time.monotonic() > deadline:
            raise TimeoutError("the key-pair pool did not fill in time")
        time.sleep(0.02)


def token_creation(repeat: int = 5, key_pairs=None) -> list[float]:
    """Seconds of each of `repeat` POST + GET /import_token with a warm pool: each timed
    creation starts once the refill thread has made up for the previous one, as it would
    between the minutes-apart token requests of real use.

    `key_pairs`: RSA-4096 private keys already made, which the pool's refill thread then
    hands out in turn (a throwaway server's tokens may share them) instead of generating
    repeat + 2 new ones; the timing notebook passes those its key-generation step made."""
    source = fixed_key_pairs(key_pairs) if key_pairs else None
    with KeyPairPool(source=source) as pool, running_server(key_pair_source=pool) as server:
        client = KeyProtectClient(server.url, "bench", "bench-token")

        def create_and_get():
            client.create_import_token(expiration=600, max_allowed_retrievals=1)
            client.get_import_token()

        times = []
        for _ in range(repeat + 1):
            wait_until_full(pool)
            start = time.perf_counter()
            create_and_get()
            times.append(time.perf_counter() - start)
        client.close()
    return times[1:]  # the first one warms the connection


# --- one secure import against its floor -----------------------------------------------------

def secure_imports(server_url: str, count: int, threads: int = 1) -> float:
    """Seconds for `count` secure imports spread over `threads` clients, each with its own
    keep-alive session. Returns wall time."""
    per_thread = count // threads
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        client = KeyProtectClient(server_url, "bench", "bench-token")
        try:
            token = client.get_import_token()
            for i in range(n):
                byok_import(client, os.urandom(32), f"bench-{threading.get_ident()}-{i}",
                            token=token)
        except BaseException as exc:  # surfaced below; a lost import must not pass silently
            errors.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=worker, args=(per_thread,)) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


@contextmanager
def mock_in_another_process():
    """`python -m byoklib serve --port 0` as a separate process, as a deployed mock runs:
    the client's Python then does not compete with the server's for one GIL. Its tokens use
    the TEST-ONLY key pairs, so no background key generation competes for the CPU while we
    measure imports. Yields its URL."""
    keys = [arg for path in TEST_KEYS for arg in ("--token-key", str(path))]
    process = subprocess.Popen([sys.executable, "-m", "byoklib", "serve", "--port", "0", *keys],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("Key Protect mock listening on "):
            raise RuntimeError("the mock did not start")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(10)


IMPORT_ROUNDS = 60
MOCK_HTTP_FLOOR = "bare import, mock's HTTP / floor"


def one_import(repeat: int = 5, rounds: int = IMPORT_ROUNDS) -> tuple[dict, dict]:
    """The import's ratios (to its floor, and to the same import sent to a bare decrypting
    server), and the median seconds of one secure import (sealing included), of the
    floor's parts and of the diagnostics that say where the rest goes.

    The steps are measured in alternating short rounds, so a slow spell of the machine
    (it is shared) weighs on all of them alike rather than on one. A ratio is the median
    of the rounds' own ratios: each compares steps measured moments apart, where a ratio
    of medians pooled over the whole run can pair a step from a quiet moment with one
    from a busy moment."""
    decryption = median_seconds(decryption_step(), 20, warmup=3)
    with mock_in_another_process() as mock_url, bare_server() as bare_url, \
            bare_server("decrypt", str(TEST_KEYS[0])) as decrypt_url, \
            bare_server("decrypt", str(TEST_KEYS[0]), mock_http=True) as decrypt_mock_http_url, \
            bare_server("busy", repr(decryption)) as busy_url:
        client = KeyProtectClient(mock_url, "bench", "bench-token")
        session = client.session    # the floor's round trips go through the same session
        client.create_import_token(expiration=3600, max_allowed_retrievals=500)
        token = client.get_import_token()   # the mock's first token key is TEST_KEYS[0]

        def importer(url):   # the same client code, to the mock or a bare decrypting server
            to = KeyProtectClient(url, "bench", "bench-token", session=session)
            # sealing included: the floor has the client's crypto too
            return lambda: byok_import(to, os.urandom(32), "bench-key", token=token)

        body = import_body(prepare_secure_import(os.urandom(32), token))
        steps = {"import": importer(mock_url), "cryptography": crypto_step(),
                 "HTTP round trip": round_trip(session, bare_url + KEYS_PATH, body),
                 "bare import": importer(decrypt_url),
                 "bare import, mock's HTTP": importer(decrypt_mock_http_url),
                 "busy server": round_trip(session, busy_url + KEYS_PATH, body)}
        samples, ratios = alternate(steps, rounds, repeat, {
            "secure import / floor": ("import", ("cryptography", "HTTP round trip")),
            "secure import / bare import": ("import", ("bare import",)),
            "bare import / floor": ("bare import", ("cryptography", "HTTP round trip")),
            MOCK_HTTP_FLOOR: ("bare import, mock's HTTP", ("cryptography", "HTTP round trip"))})
        client.close()
    parts = {name: statistics.median(values) for name, values in samples.items()}
    parts["decryption"] = decryption
    return ratios, parts


def alternate(steps: dict, rounds: int, repeat: int, wanted: dict) -> tuple[dict, dict]:
    """Run `steps` in turn for `rounds` rounds of `repeat` timings each; returns every
    step's timings and, for each `wanted` name -> (step, floor steps), the rounds' ratios
    step / sum(floor steps) as (median, lower quartile, upper quartile)."""
    samples = {name: [] for name in steps}
    round_ratios = {name: [] for name in wanted}
    for _ in range(rounds):
        this_round = {}
        for name, step in steps.items():
            seconds = list(measure(step, repeat=repeat, warmup=1)["seconds"])
            samples[name] += seconds
            this_round[name] = statistics.median(seconds)
        for name, (top, floor) in wanted.items():
            round_ratios[name].append(this_round[top] / sum(this_round[f] for f in floor))
    summary = {}
    for name, values in round_ratios.items():
        low, _, high = statistics.quantiles(values, n=4)
        summary[name] = (statistics.median(values), low, high)
    return samples, summary


WRAP_ROUNDS = 40


def wrap_and_unwrap(repeat: int = 5, rounds: int = WRAP_ROUNDS) -> tuple[dict, dict]:
    """Wrap and unwrap of a 32-byte DEK under a root key of the mock, each against AES-GCM
    in-process plus one round trip of the same request to the do-nothing server."""
    with mock_in_another_process() as mock_url, ExitStack() as bare_servers:
        client = KeyProtectClient(mock_url, "bench", "bench-token")
        session = client.session
        key_id = client.create_root_key("bench-wrap")["id"]
        dek, aad = os.urandom(32), ["bench"]
        ciphertext = client.wrap(key_id, dek, aad=aad)["ciphertext"]
        bodies = {"wrap": {"plaintext": b64(dek), "aad": aad},
                  "unwrap": {"ciphertext": b64(ciphertext), "aad": aad}}
        bodies = {name: json.dumps(body).encode() for name, body in bodies.items()}
        actions = f"{mock_url}/api/v2/keys/{key_id}/actions/"
        bare = {}
        for name, body in bodies.items():   # the timed requests must succeed
            answer = round_trip(session, actions + name, body)()
            if answer.status_code != 200:
                raise RuntimeError(f"the mock refused the {name}")
            # the do-nothing server gives the mock's answer back: the same size both ways
            url = bare_servers.enter_context(bare_server(answer=answer.text))
            bare[name] = f"{url}/api/v2/keys/{key_id}/actions/{name}"   # the same path
        material, iv = os.urandom(32), os.urandom(protocol.IV_BYTES)
        sealed = AESGCM(material).encrypt(iv, dek, b"bench")
        steps = {"wrap": round_trip(session, actions + "wrap", bodies["wrap"]),
                 "unwrap": round_trip(session, actions + "unwrap", bodies["unwrap"]),
                 "AES-GCM wrap": lambda: AESGCM(material).encrypt(iv, dek, b"bench"),
                 "AES-GCM unwrap": lambda: AESGCM(material).decrypt(iv, sealed, b"bench"),
                 "round trip (wrap)": round_trip(session, bare["wrap"], bodies["wrap"]),
                 "round trip (unwrap)": round_trip(session, bare["unwrap"], bodies["unwrap"])}
        samples, ratios = alternate(steps, rounds, repeat, {
            "wrap / floor": ("wrap", ("AES-GCM wrap", "round trip (wrap)")),
            "unwrap / floor": ("unwrap", ("AES-GCM unwrap", "round trip (unwrap)"))})
        client.close()
    return ratios, {name: statistics.median(values) for name, values in samples.items()}


THROUGHPUT_ROUNDS = 5


def throughput(count: int = 60, rounds: int = THROUGHPUT_ROUNDS) -> tuple[float, float, float]:
    """Imports per second with 1 and 2 client threads (medians of alternating rounds), and
    the median of each round's 2-thread / 1-thread ratio (paired, as in `one_import`); also
    checks that every import landed."""
    ones, twos = [], []
    with mock_in_another_process() as url:
        admin = KeyProtectClient(url, "bench", "bench-token")
        admin.create_import_token(expiration=3600, max_allowed_retrievals=500)
        secure_imports(url, 4)  # warm up
        before = admin.key_total()
        for _ in range(rounds):
            ones.append(count / secure_imports(url, count, threads=1))
            twos.append(count / secure_imports(url, count, threads=2))
        landed = admin.key_total() - before
        admin.close()
    if landed != 2 * count * rounds:
        raise AssertionError(f"{2 * count * rounds} imports sent, {landed} landed")
    ratio = statistics.median(two / one for one, two in zip(ones, twos))
    return statistics.median(ones), statistics.median(twos), ratio


# --- the table --------------------------------------------------------------------------------

def run(out_dir: Path | str = "build/bench"):
    import pandas as pd

    keygen = bare_rsa4096_generation(repeat=5)
    token = statistics.median(token_creation(repeat=5))
    ratios, parts = one_import()
    wraps, wrap_parts = wrap_and_unwrap()
    floor = parts["cryptography"] + parts["HTTP round trip"]
    waking = parts["busy server"] - parts["decryption"] - parts["HTTP round trip"]
    one, two, ratio = throughput()
    ms = 1e3

    def spread(name: str, table: dict) -> str:
        _, low, high = table[name]
        return f"median of the rounds' ratios, middle half {low:.2f}-{high:.2f}"

    def ratio_figure(name, table, goal, detail):
        value = table[name][0]
        return Figure(name, value, f"<= {goal:.2f}", value <= goal,
                      f"{spread(name, table)}; {detail}")

    figures = [
        Figure("token creation / RSA-4096 generation", token / keygen, f"<= {TOKEN_GOAL:.2f}",
               token / keygen <= TOKEN_GOAL,
               f"token {token * ms:.1f} ms, keygen {keygen * ms:.0f} ms (medians)"),
        ratio_figure("secure import / floor", ratios, IMPORT_GOAL,
                     f"of {IMPORT_ROUNDS} rounds; medians: import {parts['import'] * ms:.2f} "
                     f"ms, floor {floor * ms:.2f} ms = crypto {parts['cryptography'] * ms:.2f}"
                     f" + HTTP {parts['HTTP round trip'] * ms:.2f}; a bare server kept busy "
                     f"one decryption's time ({parts['decryption'] * ms:.2f} ms) costs "
                     f"{waking * ms:.2f} ms more than that plus a round trip; the bare "
                     f"decrypting server's import is itself {ratios['bare import / floor'][0]:.2f}"
                     f"x the floor, {ratios[MOCK_HTTP_FLOOR][0]:.2f}x on the mock's own HTTP "
                     f"layer (the rest is the mock's own: its service and access log)"),
        ratio_figure("secure import / bare import", ratios, 1.05,
                     f"the same byok_import to a bare http.server that parses, RSA-decrypts, "
                     f"opens the nonce and answers as the mock does: "
                     f"{parts['bare import'] * ms:.2f} ms (median)"),
        ratio_figure("wrap / floor", wraps, 1.10,
                     f"of {WRAP_ROUNDS} rounds; medians: wrap {wrap_parts['wrap'] * ms:.3f} ms,"
                     f" bare round trip {wrap_parts['round trip (wrap)'] * ms:.3f} ms, AES-GCM "
                     f"{wrap_parts['AES-GCM wrap'] * ms:.4f} ms"),
        ratio_figure("unwrap / floor", wraps, 1.10,
                     f"medians: unwrap {wrap_parts['unwrap'] * ms:.3f} ms, bare round trip "
                     f"{wrap_parts['round trip (unwrap)'] * ms:.3f} ms, AES-GCM "
                     f"{wrap_parts['AES-GCM unwrap'] * ms:.4f} ms"),
        Figure("2-thread / 1-thread import rate", ratio, f">= {THREADS_GOAL}",
               ratio >= THREADS_GOAL,
               f"median of {THROUGHPUT_ROUNDS} rounds' ratios; medians over the run: "
               f"{one:.0f}/s with 1 thread, {two:.0f}/s with 2"),
    ]
    table = pd.DataFrame([f.__dict__ for f in figures])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "bench.csv", index=False)
    chart(table, out / "bench.png")
    return table


def chart(table, path: Path) -> None:
    from byoklib.tutorial.timing import NotebookFigure as MplFigure

    fig = MplFigure(figsize=(8, 3))
    ax = fig.subplots()
    goals = [float(g.split()[-1]) for g in table["goal"]]
    normalised = [m / g for m, g in zip(table["measured"], goals)]
    colours = ["#16a34a" if met else "#dc2626" for met in table["met"]]
    ax.barh(table["name"], normalised, color=colours)
    ax.axvline(1.0, color="#334155", linestyle="--", label="goal")
    ax.set_xlabel("measured / goal (green: goal met)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(out_dir: str = "build/bench") -> int:
    started = time.perf_counter()
    table = run(out_dir=out_dir)
    width = max(len(name) for name in table["name"])
    for row in table.itertuples():
        print(f"{row.name:<{width}}  {row.measured:6.3f}  goal {row.goal:<8} "
              f"{'met' if row.met else 'NOT MET'}\n{'':<{width}}  {row.detail}")
    print(f"\nwritten: {out_dir}/bench.csv, {out_dir}/bench.png "
          f"({time.perf_counter() - started:.0f} s)")
    return 0
