"""End-to-end power cuts: the firmware on the MicroPython unix port runs short card sessions
against the demo central system and is SIGKILLed at random moments (seeded), then started
again on the same data, at least 50 times.

Afterwards, at the central system: every transaction is stopped exactly once (a copy re-sent
because the cut fell between the answer and the journal's ack is identical to the first),
with reason PowerLoss when the cut fell inside it and Local when the session ended first;
a re-sent StartTransaction is byte-identical in connector, idTag, timestamp and meterStart
(the central system recognised it and answered the same id: no transaction without a stop);
nothing is lost (every journaled message arrives: Start, MeterValues, Stop in order) and the
meter values are monotonic within each transaction and across sessions and power cuts.
"""

import os
import random
import time

import pytest
from e2e import assert_calls_valid, energy_wh

# About 80 s of power cuts: started first by the xdist workers of `make pytest`.
pytestmark = [pytest.mark.e2e, pytest.mark.start_first]

KILLS = int(os.getenv("POWERCUT_KILLS", "52"))
SEED = int(os.getenv("POWERCUT_SEED", "16061"))


def test_sigkill_at_random_moments_loses_no_transaction(csms, start_firmware):
    rnd = random.Random(SEED)
    cut_inside = set()  # idTags of sessions whose Start was seen before the cut
    completed = set()  # idTags whose Stop (Local) was seen before the cut
    tapped_twice = set()  # idTags whose stopping tap came before the cut
    t0 = time.monotonic()
    for i in range(KILLS):
        # The first start sets one MeterValues a second, persisted for every restart.
        fw = start_firmware(csms.url(), config={"ocppi": 1} if i == 0 else None, accepted=True)
        tag = "S%d" % i
        if i % 5 == 4:
            # This time the cut falls after the central system got the Start and before
            # the firmware has its answer: the Start is sent again after the restart.
            def cut(cp_id, action, payload, fw=fw):
                if action == "StartTransaction":
                    fw.proc.kill()
            csms.csms.on_call = cut
        else:
            csms.csms.on_call = None
        fw.sim(cp="C", card=tag)
        cut_at = time.monotonic() + rnd.uniform(0.0, 3.0)
        tap_again = time.monotonic() + 1.6
        tapped = False
        while time.monotonic() < cut_at:
            if fw.proc.poll() is not None:
                break  # cut by the central system's hook
            if not tapped and time.monotonic() >= tap_again:
                fw.sim(card=tag)  # the same card: stop (Local)
                tapped = True
            time.sleep(0.02)
        fw.kill()
        if tapped:
            tapped_twice.add(tag)
        seen = {(a, p.get("idTag")) for _, a, p in csms.csms.received}
        if ("StopTransaction", tag) in seen:
            completed.add(tag)
        elif ("StartTransaction", tag) in seen:
            cut_inside.add(tag)
    # Power back for good: everything still in the journal must arrive.
    csms.csms.on_call = None
    fw = start_firmware(csms.url())
    fw.wait_status(lambda s: s["ocppa"] and s["jq"] == 0, keys=("ocppa", "jq"), timeout=60)
    elapsed = time.monotonic() - t0
    fw.stop()  # nothing more arrives while the record is read
    print("%d power cuts in %.1f s" % (KILLS, elapsed))
    assert_calls_valid(csms)
    received = csms.csms.received

    starts = {}  # txid -> list of Start payloads received for it
    for _, a, p in received:
        if a == "StartTransaction":
            key = ("CP1", p["connectorId"], p["idTag"], p["meterStart"], p["timestamp"])
            starts.setdefault(csms.csms.transactions_by_key[key], []).append(p)
    assert len(starts) >= KILLS // 3, "too few transactions started to prove anything"
    resent = 0
    reasons = {}
    for txid, tx in csms.csms.transactions.items():
        # Exactly once: one distinct stop (identical re-sends allowed, nothing else).
        assert len(set(tx["stops"])) == 1, (txid, tx)
        copies = starts[txid]
        assert all(p == copies[0] for p in copies), copies
        resent += len(copies) - 1
        tag = copies[0]["idTag"]
        reason = tx["stops"][0][2]
        reasons[reason] = reasons.get(reason, 0) + 1
        if tag in completed:
            assert reason == "Local", (tag, tx)
        elif tag not in tapped_twice:
            assert reason == "PowerLoss", (tag, tx)
        else:  # the tap came; the cut fell around its Stop
            assert reason in ("Local", "PowerLoss"), (tag, tx)
        # Order and monotonic meter values within the transaction.
        kinds = []
        last = copies[0]["meterStart"]
        for _, a, p in received:
            if a == "StartTransaction" and p == copies[0]:
                kinds.append("S")
            elif a in ("MeterValues", "StopTransaction") and p.get("transactionId") == txid:
                kinds.append(a[0] if a == "MeterValues" else "T")
                vals = energy_wh(p) if a == "MeterValues" else [p["meterStop"]]
                for wh in vals:
                    assert wh >= last, (txid, wh, last)
                    last = wh
        s = "".join(kinds)
        assert s[0] == "S" and s[-1] == "T" and s.lstrip("S").rstrip("T").strip("M") == "", s
    # Monotonic across sessions and power cuts too: the meter's register survives a cut
    # (hal/sim.py keeps it in the data directory), so no session starts below where the
    # previous one stopped.
    prev_stop = None
    for txid in sorted(csms.csms.transactions):
        tx = csms.csms.transactions[txid]
        if prev_stop is not None:
            assert starts[txid][0]["meterStart"] >= prev_stop, (txid, prev_stop)
        prev_stop = tx["stops"][0][0]
    # Every session whose Start the central system saw was stopped (by the cut or the card).
    tags = {starts[t][0]["idTag"] for t in starts}
    assert cut_inside | completed <= tags
    print("transactions %d, stop reasons %s, Start re-sent identically %d times"
          % (len(starts), reasons, resent))
    # Cuts between a send and its answer happen (the re-send path is exercised): how often
    # depends on the machine's load (9 of 52 on a busy one), so the bound only proves it.
    assert resent >= KILLS // 10, resent
    # The seeded cut times cover both cases.
    assert min(reasons.get("PowerLoss", 0), reasons.get("Local", 0)) >= KILLS // 10, reasons
