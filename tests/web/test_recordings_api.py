"""Call recordings over HTTP: ranges, who may hear a call, signed links, missing and unsafe files.

The calls are logged by replaying real Asterisk traffic (asterisk/recordings/inbound_recorded*),
and the audio is the WAV file MixMonitor wrote during that very call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.users.models import AuthSession
from tests.conftest import UserFactory
from tests.telephony.helpers import read_truth
from tests.telephony.pbx import replayed_pbx
from tests.web.recorded_calls import ABANDONED, ANSWERED, WAV
from web.auth import issue_recording_token
from web.container import Container
from web.logs import redact
from web.recording_files import UnsafeName, file_name

pytestmark = pytest.mark.usefixtures("db")

UNRECORDED = read_truth("inbound_answered")["calls"][0]
SIZE = WAV.stat().st_size


@pytest.fixture
async def calls(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """The three calls, logged from the replayed traffic: linkedid -> communication id."""
    async with replayed_pbx(sessions) as pbx:
        await pbx.play(
            "inbound_recorded", "inbound_recorded_abandoned", "inbound_answered", renumber=False
        )
    async with sessions() as s:
        rows = (await s.scalars(select(Communication).where(Communication.kind == "call"))).all()
    return {str(r.external_id): r.id for r in rows}


@pytest.fixture
def recorded(calls: dict[str, int]) -> int:
    """The communication id of the recorded, answered call."""
    return calls[ANSWERED["linkedid"]]


@pytest.fixture
async def agent(make_user: UserFactory) -> dict[str, str]:
    """Extension 101 answered the recorded call."""
    return (await make_user(role="operator", extension="101"))[1]


async def _set_extra(
    sessions: async_sessionmaker[AsyncSession], comm_id: int, **values: Any
) -> None:
    async with sessions() as s:
        comm = await s.get(Communication, comm_id)
        assert comm is not None
        comm.extra = {**comm.extra, **values}
        flag_modified(comm, "extra")
        await s.commit()


def _url(comm_id: int) -> str:
    return f"/api/calls/{comm_id}/recording"


@pytest.mark.usefixtures("rec_dir")
async def test_whole_file_and_byte_ranges(
    api: httpx.AsyncClient, recorded: int, agent: dict[str, str]
) -> None:
    url, data = _url(recorded), WAV.read_bytes()
    full = await api.get(url, headers=agent)
    assert full.status_code == 200
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "audio/wav"
    assert full.content == data and data[:4] == b"RIFF"

    cases = {
        "bytes=0-99": (0, 99),
        f"bytes={SIZE - 44}-": (SIZE - 44, SIZE - 1),  # open-ended
        "bytes=-100": (SIZE - 100, SIZE - 1),  # suffix: the last 100 bytes
        f"bytes=1000-{SIZE + 5000}": (1000, SIZE - 1),  # an end past the file is cut to it
    }
    for header, (start, end) in cases.items():
        part = await api.get(url, headers={**agent, "Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{SIZE}", header
        assert part.content == data[start : end + 1], header

    outside = await api.get(url, headers={**agent, "Range": f"bytes={SIZE}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.usefixtures("rec_dir")
async def test_who_may_hear_a_call(
    api: httpx.AsyncClient,
    recorded: int,
    agent: dict[str, str],
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    url = _url(recorded)
    _, other_operator = await make_user(role="operator", extension="102")
    owner, owner_headers = await make_user(role="manager")
    _, other_manager = await make_user(role="manager")
    _, supervisor = await make_user(role="supervisor")
    async with sessions() as s:
        comm = await s.get(Communication, recorded)
        assert comm is not None
        client = await s.get(Client, comm.client_id)
        assert client is not None
        client.responsible_id = owner.id
        await s.commit()

    assert (await api.get(url)).status_code == 401
    for headers in (agent, owner_headers, supervisor):
        assert (await api.get(url, headers=headers)).status_code == 200
        assert (await api.post(f"{url}/link", headers=headers)).status_code == 200
    for headers in (other_operator, other_manager):
        refused = await api.get(url, headers=headers)
        assert refused.status_code == 403
        assert "may not hear" in refused.json()["detail"]
        assert (await api.post(f"{url}/link", headers=headers)).status_code == 403


@pytest.mark.usefixtures("rec_dir")
async def test_a_signed_link_plays_without_a_header_for_that_call_only(
    api: httpx.AsyncClient,
    calls: dict[str, int],
    agent: dict[str, str],
    make_user: UserFactory,
    container: Container,
) -> None:
    comm_id = calls[ANSWERED["linkedid"]]
    link = await api.post(f"{_url(comm_id)}/link", headers=agent)
    assert link.status_code == 200
    body = link.json()
    assert body["media_type"] == "audio/wav" and body["empty"] is False
    assert body["url"].startswith(f"{_url(comm_id)}?token=")
    played = await api.get(body["url"], headers={"Range": "bytes=0-43"})
    assert played.status_code == 206 and played.content == WAV.read_bytes()[:44]
    # the token in the URL never reaches the logs (uvicorn logs request lines)
    assert "[redacted]" in redact(f'"GET {body["url"]} HTTP/1.1" 206')
    assert body["url"].split("token=")[1] not in redact(f'"GET {body["url"]} HTTP/1.1" 206')

    token = body["url"].split("token=")[1]
    # the link's token is not a bearer token, and it opens no other call
    assert (
        await api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    other = calls[ABANDONED["linkedid"]]
    assert (await api.get(f"{_url(other)}?token={token}")).status_code == 403
    assert (await api.get(f"{body['url']}x")).status_code == 401
    secret = container.settings.web.secret_key
    user_id = (await api.get("/api/auth/me", headers=agent)).json()["id"]
    sid = await _session_of(container, user_id)
    expired = issue_recording_token(user_id, sid, comm_id, secret, ttl_s=-1)
    assert (await api.get(f"{_url(comm_id)}?token={expired}")).status_code == 401
    # access is checked on every request: a link of someone who may not hear it opens nothing
    stranger, _ = await make_user(role="operator", extension="109")
    stranger_sid = await _session_of(container, stranger.id)
    theirs = issue_recording_token(stranger.id, stranger_sid, comm_id, secret, ttl_s=60)
    assert (await api.get(f"{_url(comm_id)}?token={theirs}")).status_code == 403
    # a link lives no longer than the sign-in it came from
    assert (await api.post("/api/auth/logout", headers=agent)).status_code == 204
    assert (await api.get(body["url"], headers={"Range": "bytes=0-43"})).status_code == 401


async def _session_of(container: Container, user_id: int) -> int:
    async with container.sessions() as s:
        sid = await s.scalar(select(AuthSession.id).where(AuthSession.user_id == user_id))
    assert sid is not None
    return int(sid)


async def test_no_recording_or_a_missing_file_is_a_clear_404(
    api: httpx.AsyncClient,
    calls: dict[str, int],
    agent: dict[str, str],
    rec_dir: Path,
) -> None:
    unrecorded = await api.get(_url(calls[UNRECORDED["linkedid"]]), headers=agent)
    assert unrecorded.status_code == 404
    assert unrecorded.json() == {
        "detail": f"call {calls[UNRECORDED['linkedid']]} has no recording",
        "code": "recording.none",
    }
    (rec_dir / WAV.name).unlink()
    for response in (
        await api.get(_url(calls[ANSWERED["linkedid"]]), headers=agent),
        await api.post(f"{_url(calls[ANSWERED['linkedid']])}/link", headers=agent),
    ):
        assert response.status_code == 404
        assert response.json()["detail"].startswith("recording missing: no file")
    assert (await api.get(_url(999999), headers=agent)).status_code == 404


@pytest.mark.usefixtures("rec_dir")
async def test_an_unanswered_calls_header_only_file(
    api: httpx.AsyncClient, calls: dict[str, int], agent: dict[str, str], make_user: UserFactory
) -> None:
    comm_id = calls[ABANDONED["linkedid"]]
    _, supervisor = await make_user(role="supervisor")  # 101 never answered it
    link = (await api.post(f"{_url(comm_id)}/link", headers=supervisor)).json()
    assert link["empty"] is True
    whole = await api.get(link["url"])
    assert whole.status_code == 200 and len(whole.content) == 44 == ABANDONED["recording_bytes"]


async def test_paths_from_the_pbx_never_leave_the_recordings_folder(
    api: httpx.AsyncClient,
    recorded: int,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    rec_dir: Path,
    tmp_path: Path,
) -> None:
    _, supervisor = await make_user(role="supervisor")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF not yours")
    (rec_dir / "link.wav").symlink_to(secret)
    for reported in (
        "../secret.wav",
        "/var/spool/asterisk/monitor/../../../../" + str(secret),
        "sub/../../secret.wav",
        "link.wav",  # a symlink out of the folder
        str(secret),  # an absolute path elsewhere is looked up by its name, in the folder
    ):
        await _set_extra(sessions, recorded, recording={"file": reported, "empty": False})
        refused = await api.get(_url(recorded), headers=supervisor)
        assert refused.status_code == 404, reported
        assert refused.json()["detail"].startswith("recording missing"), reported
        assert b"not yours" not in refused.content


def test_file_names_from_the_pbx() -> None:
    spool = "/var/spool/asterisk/monitor"
    assert str(file_name(f"{spool}/2026/12/01/in-1.wav", spool)) == "2026/12/01/in-1.wav"
    assert str(file_name("/tmp/pbx/recordings/in-1.wav", spool)) == "in-1.wav"
    assert str(file_name("q/out-2.wav", spool)) == "q/out-2.wav"
    for bad in ("", "../x.wav", "a/../../x.wav", f"{spool}/../x.wav", "x\x00.wav", "..\\x.wav"):
        with pytest.raises(UnsafeName):
            file_name(bad, spool)


async def test_a_remote_pbx_recording_is_a_redirect(
    api: httpx.AsyncClient,
    recorded: int,
    agent: dict[str, str],
    container: Container,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    container.settings.web.recordings_url_template = "https://pbx.example/rec/{name}"
    moved = await api.get(_url(recorded), headers=agent)
    assert moved.status_code == 307
    assert moved.headers["location"] == f"https://pbx.example/rec/{WAV.name}"
    # FreePBX files by date under its spool: the subfolders stay in the name
    freepbx = "/var/spool/asterisk/monitor/2026/12/01/in-79161234567 #1.wav"
    await _set_extra(sessions, recorded, recording={"file": freepbx, "empty": False})
    moved = await api.get(_url(recorded), headers=agent)
    assert (
        moved.headers["location"] == "https://pbx.example/rec/2026/12/01/in-79161234567%20%231.wav"
    )
