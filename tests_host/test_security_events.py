"""firmware/security/events.py: the bounded security log and the critical-event queue."""

from firmware.security.events import Queue, SecurityLog


def test_log_is_bounded_and_rotated_keeping_the_newest(tmp_path):
    lg = SecurityLog(str(tmp_path), max_bytes=200)
    for i in range(40):
        lg.add("2026-01-01T00:00:%02dZ" % i, "InvalidMessages", "n%d" % i)
    files = lg.files()
    assert [f.rsplit("/", 1)[-1] for f in files] == ["log.1.txt", "log.txt"]
    text = "".join(open(f).read() for f in files)
    assert len(text) <= 400
    assert text.rstrip().endswith("2026-01-01T00:00:39Z InvalidMessages n39")
    lg.clear()
    assert lg.files() == []


def test_queue_delivers_in_order_across_a_restart(tmp_path):
    q = Queue(str(tmp_path))
    for i in range(3):
        q.append({"type": "StartupOfTheDevice", "timestamp": "t%d" % i})
    seq, p = q.peek()
    assert (seq, p["timestamp"]) == (1, "t0")
    q.ack(seq)
    q = Queue(str(tmp_path))  # power cut and back
    assert q.pending() == 2
    assert q.peek()[1]["timestamp"] == "t1"
    q.ack(2)
    q.ack(3)
    assert q.peek() is None
    assert q.append({"type": "ResetOrReboot", "timestamp": "t3"}) == 4  # seq never reused


def test_a_torn_line_is_skipped_and_never_merged_with_the_next(tmp_path, capsys):
    q = Queue(str(tmp_path))
    q.append({"type": "ResetOrReboot", "timestamp": "a"})
    with open(q.path, "a") as f:
        f.write('2 {"type": "Tamp')  # the power went while appending
    q = Queue(str(tmp_path))
    q.append({"type": "StartupOfTheDevice", "timestamp": "b"})
    got = []
    while q.peek() is not None:
        seq, p = q.peek()
        got.append(p["timestamp"])
        q.ack(seq)
    assert got == ["a", "b"]
    assert "corrupt queue line" in capsys.readouterr().out


def test_a_fully_acknowledged_queue_file_is_removed_once_large(tmp_path):
    import os

    q = Queue(str(tmp_path))
    for _ in range(40):
        q.ack(q.append({"type": "ResetOrReboot", "timestamp": "x" * 40}))
    assert os.path.getsize(q.path) < 2200
    q = Queue(str(tmp_path))
    assert q.peek() is None and q.seq == 40
