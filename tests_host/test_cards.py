"""firmware/cards.py: the RFID cards by name and their energy (go-e `cards`, `lrn`, `del`) and
the session's card (`trx`), standalone and with OCPP."""

import asyncio
import json

import pytest
from txnkit import drain, events, make, run

from firmware import cards as cardsmod
from firmware.api import Api


def attach(cp):
    """As the app has it loaded (firmware/app.py: LAZY_API, _card_read), without its booking
    task: the tests run the booking step by step (settle)."""
    cp.charger.subscribe(cp._card_read)
    cards = cardsmod.Cards(cp)
    cards.start()
    assert cp.cards is cards
    return cards


def read(cp, cards, tag):
    """The charger's tick hands a card read to the app and to the cards."""
    cp._card_read("card", tag)
    cards._on_charger("card", tag)


@pytest.fixture
def standalone(tmp_path):
    cp, txn = make(tmp_path, ocppe=False, acs=1)
    return cp, txn, attach(cp)


@pytest.fixture
def ocpp(tmp_path):
    cp, txn = make(tmp_path)
    return cp, txn, attach(cp)


def view(cards):
    out = {}
    cards.status(out)
    return out


def test_ten_slots_as_go_e_shows_them(standalone):
    _, _, cards = standalone
    v = view(cards)
    assert v["trx"] is None
    assert v["cards"] == [{"name": "", "energy": 0, "cardId": False}] * 10


def test_cards_are_written_per_slot_and_survive_a_restart(standalone, tmp_path):
    cp, _, cards = standalone
    value = [{}, {"name": "Anna", "rfid": "04A1B2C3"}, {"name": "Ben", "rfid": "B2", "energy": 7}]
    assert cards.check("cards", value) is None
    cards.apply({"cards": value})
    v = view(cards)["cards"]
    assert v[0] == {"name": "", "energy": 0, "cardId": False}
    assert v[1] == {"name": "Anna", "energy": 0, "cardId": True}
    assert v[2] == {"name": "Ben", "energy": 7, "cardId": True}
    # A read echoed back changes nothing; a field left out stays.
    cards.apply({"cards": [{"cardId": False}, {"name": "Anna B."}]})
    assert cards.tag(1) == "04A1B2C3" and view(cards)["cards"][1]["name"] == "Anna B."
    assert cards.tag(0) is None
    again = cardsmod.Cards(cp)
    assert view(again)["cards"] == view(cards)["cards"] and again.slot("B2") == 2
    text = open(str(tmp_path / "cards.json")).read()
    assert "04A1B2C3" in text  # on flash, never in a read of the API
    assert "04A1B2C3" not in json.dumps(view(cards))


def test_learn_the_last_card_read_and_delete(standalone):
    cp, txn, cards = standalone
    assert cards.check("lrn", 3) == "no card read yet"
    read(cp, cards, "CAFE01")
    assert cards.check("lrn", 3) is None
    cards.apply({"lrn": 3})
    assert cards.slot("CAFE01") == 3
    assert cards.check("del", 3) is None
    cards.apply({"del": 3})
    assert cards.slot("CAFE01") is None


@pytest.mark.parametrize(
    "key,value",
    [
        ("cards", {"name": "x"}),
        ("cards", [{}] * 11),
        ("cards", [{"name": 5}]),
        ("cards", [{"name": "x" * 33}]),
        ("cards", [{"rfid": "x" * 21}]),
        ("cards", [{"energy": -1}]),
        ("cards", [{"energy": True}]),
        ("cards", [{"colour": "red"}]),
        ("cards", ["Anna"]),
        ("lrn", 10),
        ("del", -1),
        ("del", True),
        ("trx", 11),
        ("trx", True),
        ("trx", "1"),
        ("trx", 1),  # slot 0 is empty
    ],
)
def test_bad_values_are_refused(standalone, key, value):
    _, _, cards = standalone
    assert cards.check(key, value)


def test_a_bad_request_applies_nothing_across_keys(standalone):
    cp, _, cards = standalone
    api = Api(cp.config, providers=(cards,))
    code, body = api.set({"cards": '[{"name": "A", "rfid": "X1"}]', "amp": "40"})
    assert code == 400 and list(body) == ["amp"]
    assert cards.slot("X1") is None
    code, body = api.set({"cards": '[{"name": "A", "rfid": "X1"}]', "amp": "10"})
    assert (code, body) == (200, {"cards": True, "amp": True}) and cards.slot("X1") == 0


def test_standalone_a_stored_card_authorizes_and_gets_the_session_energy(standalone):
    cp, txn, cards = standalone
    cards.apply({"cards": [{"name": "Anna", "rfid": "A1"}]})

    async def go():
        await events(txn, "plugged")
        assert view(cards)["trx"] is None and not cp.charger.authorized  # acs=1
        read(cp, cards, "A1")  # the charger's tick hands the card to all of them
        await events(txn, ("card", "A1"))
        assert cp.charger.authorized and view(cards)["trx"] == 1
        cp.charger.session_wh = 1234.4
        cards._on_charger("unplugged", None)
        cards.settle()

    run(go())
    assert view(cards)["cards"][0]["energy"] == 1234
    assert cardsmod.Cards(cp).view()[0]["energy"] == 1234


def test_standalone_trx_unlocks_with_or_without_a_card(standalone):
    cp, txn, cards = standalone
    cards.apply({"cards": [{}, {"name": "Ben", "rfid": "B2"}]})
    run(events(txn, "plugged"))
    assert cards.check("trx", 0) is None
    cards.apply({"trx": 0})
    assert cp.charger.authorized and view(cards)["trx"] == 0
    cards.apply({"trx": None})
    assert not cp.charger.authorized and view(cards)["trx"] is None
    cards.apply({"trx": 2})
    assert cp.charger.authorized and view(cards)["trx"] == 2


def test_ocpp_trx_starts_a_transaction_the_central_system_authorizes(ocpp):
    cp, txn, cards = ocpp
    cards.apply({"cards": [{"name": "Anna", "rfid": "A1"}]})
    assert cards.check("trx", 0).startswith("OCPP needs a card")

    async def go():
        await events(txn, "plugged")
        assert cards.check("trx", 1) is None
        cards.apply({"trx": 1})
        await events(txn, txn._events.pop(0))
        assert cp.tx.id_tag == "A1" and view(cards)["trx"] == 1
        assert cards.check("trx", 1).startswith("a transaction runs")
        cp.charger.energy_wh = 3500.0
        cards.apply({"trx": None})  # ends it: StopTransaction, reason Local
        assert cp.tx is None and view(cards)["trx"] is None
        cards.settle()
        await drain(txn)

    run(go())
    assert [p["idTag"] for p in cp.session.sent("Authorize")] == ["A1"]
    assert cp.session.sent("StopTransaction")[0]["reason"] == "Local"
    assert view(cards)["cards"][0]["energy"] == 2500  # 3500 - 1000 Wh


def test_ocpp_trx_0_uses_the_dummy_card_and_reads_0(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE")
    cards = attach(cp)

    async def go():
        await events(txn, "plugged")
        assert cards.check("trx", 0) is None
        cards.apply({"trx": 0})
        await events(txn, txn._events.pop(0))
        assert cp.tx.id_tag == "FREE" and view(cards)["trx"] == 0

    run(go())


# ---- loaded only while it has work (firmware/app.py LAZY_API) -----------------------------

def _app(tmp_path, **cfg):
    from firmware import app, app_boot
    from firmware.config import Config
    from hal.sim import SimHal

    config = Config(str(tmp_path))
    if cfg:
        assert config.update(cfg, "api") == {}
    hal = SimHal()
    cp = app.ChargePoint(hal, str(tmp_path), app_boot.info("1.0", "T-1", hal.board), lambda: None,
                         config)
    cp.api = Api(config)
    return cp


def _boot(cp, then):
    """app.attach in a running loop, then `then(cp)` (a coroutine) inside it."""
    from firmware import app_boot

    async def go():
        app_boot.attach(cp)
        try:
            await then(cp)
        finally:
            for t in cp.tasks:
                t.cancel()
            await asyncio.sleep(0)

    asyncio.run(go())


@pytest.fixture
def modules_back(monkeypatch):
    """app.attach and the sweep let modules go (router.forget): put back afterwards, so the
    other tests keep the module objects they imported."""
    from cpkit import modules_kept

    import firmware
    from firmware import evse
    from firmware.ocpp import router

    monkeypatch.setattr(router, "LOADED", {})
    with modules_kept(firmware, evse):
        yield


def _sweep(cp, idle_ms):
    from compat import ticks_add, ticks_ms
    from firmware import app
    from firmware.ocpp import router

    app._lazy_sweep(cp, ticks_add(ticks_ms(), router.IDLE_MS * 3), idle_ms)  # long after


def test_with_no_card_stored_they_are_not_loaded_and_a_card_read_is_still_learned(
        tmp_path, modules_back):
    """A charger nobody stores cards on pays no heap for them: not loaded at boot, nor by a
    card read (the app keeps the last one for lrn); `lrn` loads them and stores that card,
    which keeps them loaded (its energy will be booked); once no card is stored and a
    minute passed, they go, and stop listening."""
    cp = _app(tmp_path)
    subs = []

    async def then(cp):
        subs.append((len(cp.charger._subs), len(cp._tx_subs)))
        assert cp.cards is None
        cp.charger._emit("card", "CAFE01")
        assert cp.cards is None and cp.card_last == "CAFE01"
        assert cp.api.set({"lrn": "3"}) == (200, {"lrn": True})
        cards = cp.cards
        assert cards is not None and cards.slot("CAFE01") == 3
        assert len(cp.charger._subs) == subs[0][0] + 1 and len(cp._tx_subs) == subs[0][1] + 1
        _sweep(cp, 0)  # short of memory: a stored card keeps them
        assert cp.cards is cards
        assert cp.api.set({"del": "3"}) == (200, {"del": True})
        _sweep(cp, 0)
        assert cp.cards is None
        assert (len(cp.charger._subs), len(cp._tx_subs)) == subs[0]
        assert cards._task is None
        # Read again: loaded anew from the file, as it was left.
        assert cp.api.status(["cards"])["cards"][3] == {"name": "", "energy": 0,
                                                       "cardId": False}

    _boot(cp, then)


@pytest.mark.parametrize("name", ["cards.json", "cards.json.tmp"])
def test_stored_cards_are_loaded_at_boot_and_book_a_session_in_their_task(tmp_path, name,
                                                                          modules_back):
    """With cards on flash (or only the .tmp a FAT rename cut short left) they are there
    from boot, listening: a standalone session with a stored card gets its energy booked
    and written by their own task, and no sweep lets them go."""
    with open(str(tmp_path / name), "w") as f:
        json.dump({"v": 1, "c": [None, ["Anna", "A1", 10]]}, f)
    cp = _app(tmp_path, ocppe=False, acs=1)

    async def then(cp):
        cards = cp.cards
        assert cards is not None and cards.slot("A1") == 1
        cp.charger._emit("card", "A1")
        assert cards._tag == "A1" and cp.card_last == "A1"
        cp.charger.session_wh = 500.2
        cp.charger._emit("unplugged")
        _sweep(cp, 0)
        assert cp.cards is cards  # a card stored, and energy to book
        for _ in range(5):
            await asyncio.sleep(0)
        assert not cards._book and not cards._dirty

    _boot(cp, then)
    with open(str(tmp_path / "cards.json")) as f:
        assert json.load(f)["c"][1] == ["Anna", "A1", 510]


def _lazy(cp):
    from firmware import app

    (lazy,) = [p for p in cp.api.providers
               if isinstance(p, app._Lazy) and p.row[0] == "firmware.cards"]
    return lazy


def _stored(tmp_path):
    with open(str(tmp_path / "cards.json"), "w") as f:
        json.dump({"v": 1, "c": [None, ["Anna", "A1", 10]]}, f)


def test_no_room_to_load_the_stored_cards_at_boot_is_tried_again_each_second(
        tmp_path, modules_back, monkeypatch):
    """A MemoryError loading them at boot neither stops the boot nor is forgotten: the
    housekeeping's sweep loads them as soon as there is room."""
    _stored(tmp_path)
    cp = _app(tmp_path)
    real = cardsmod.provider
    tries = []

    def short(cp_):
        tries.append(1)
        if len(tries) == 1:
            raise MemoryError("no room")
        return real(cp_)

    monkeypatch.setattr(cardsmod, "provider", short)

    async def then(cp):
        from firmware.ocpp import router

        assert cp.cards is None and _lazy(cp).due
        assert "api" in router.SHED  # the rest of the boot went on
        _sweep(cp, 0)
        assert cp.cards is not None and cp.cards.slot("A1") == 1 and not _lazy(cp).due

    _boot(cp, then)
    assert len(tries) == 2


def test_a_provider_that_fails_half_way_stays_subscribed_to_nothing(tmp_path, monkeypatch):
    cp = _app(tmp_path)
    before = (len(cp.charger._subs), len(cp._tx_subs))

    def no_room(coro):
        coro.close()
        raise MemoryError("no room")

    monkeypatch.setattr(cardsmod.asyncio, "create_task", no_room)
    with pytest.raises(MemoryError):
        cardsmod.provider(cp)
    assert (len(cp.charger._subs), len(cp._tx_subs)) == before and cp.cards is None


def test_what_cannot_be_written_is_kept_loaded_and_written_by_the_task_later(
        tmp_path, modules_back, monkeypatch):
    """A booking or an API change the flash or the heap refuses now is never lost: the
    provider stays (idle() is False, even with no card stored) and its task, which no
    failure ends, writes it once it can."""
    _stored(tmp_path)
    cp = _app(tmp_path, ocppe=False, acs=1)
    real = cardsmod.fs.write_json
    fails = [MemoryError("no room"), OSError(28), RuntimeError("odd")]

    def flaky(path, obj):
        if fails:
            raise fails.pop(0)
        return real(path, obj)

    async def quick(ms):
        await asyncio.sleep(0)

    monkeypatch.setattr(cardsmod.fs, "write_json", flaky)
    monkeypatch.setattr(cardsmod, "asleep_ms", quick)

    async def then(cp):
        cards = cp.cards
        cp.charger._emit("card", "A1")
        cp.charger.session_wh = 100.0
        cp.charger._emit("unplugged")
        assert cp.api.set({"del": "1"}) == (200, {"del": True})  # no card stored now...
        _sweep(cp, 0)
        assert cp.cards is cards  # ...but its energy and the deletion are not on flash
        for _ in range(20):
            await asyncio.sleep(0)
        assert not fails and not cards._dirty and cards._task is not None
        assert not cards._task.done()
        _sweep(cp, 0)
        assert cp.cards is None  # all on flash, no card stored: it goes

    _boot(cp, then)
    with open(str(tmp_path / "cards.json")) as f:
        assert json.load(f)["c"][1] is None  # deleted (the energy went with the card)
