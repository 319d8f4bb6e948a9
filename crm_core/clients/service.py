from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import repository
from crm_core.clients.models import Client, ClientEmail, ClientPhone, ContactPerson
from crm_core.clients.schemas import ClientCreate, ClientUpdate, PhoneIn
from crm_core.errors import Conflict, Invalid, NotFound
from crm_core.phones import InvalidPhone, normalize_phone, try_normalize_phone


def _normalized(phones: list[PhoneIn], region: str) -> list[ClientPhone]:
    seen: set[str] = set()
    result: list[ClientPhone] = []
    for phone in phones:
        try:
            e164 = normalize_phone(phone.number, region)
        except InvalidPhone as exc:
            raise Invalid(str(exc), code="phone.invalid") from None
        if e164 not in seen:
            seen.add(e164)
            result.append(ClientPhone(e164=e164, raw=phone.number, label=phone.label))
    return result


async def _check_free(
    session: AsyncSession, phones: list[ClientPhone], emails: list[str], client_id: int | None
) -> None:
    owners = await repository.phone_owners(session, [p.e164 for p in phones])
    taken = {n: c for n, c in owners.items() if c != client_id}
    if taken:
        number, owner = next(iter(taken.items()))
        raise Conflict(
            f"phone {number} already belongs to client {owner}",
            code="client.phone_taken",
            phone=number,
        )
    for email in emails:
        owner_id = await repository.client_id_by_email(session, email)
        if owner_id is not None and owner_id != client_id:
            raise Conflict(
                f"email {email} already belongs to client {owner_id}",
                code="client.email_taken",
                email=email,
            )


async def _flush(session: AsyncSession) -> None:
    # a concurrent insert of the same phone surfaces here: report it as a conflict, not a 500
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "a phone or email of this card belongs to another client", code="client.contact_taken"
        ) from None


async def create_client(session: AsyncSession, data: ClientCreate, *, region: str) -> Client:
    phones = _normalized(data.phones, region)
    await _check_free(session, phones, data.emails, None)
    client = Client(
        kind=data.kind,
        name=data.name,
        company=data.company,
        lead_source=data.lead_source,
        responsible_id=data.responsible_id,
        readiness=data.readiness,
        notes=data.notes,
        phones=phones,
        emails=[ClientEmail(email=e) for e in dict.fromkeys(data.emails)],
        contacts=[
            ContactPerson(
                name=c.name,
                position=c.position,
                phone=try_normalize_phone(c.phone, region) or c.phone,
                email=c.email,
            )
            for c in data.contacts
        ],
    )
    session.add(client)
    await _flush(session)
    return client


async def update_client(
    session: AsyncSession, client_id: int, data: ClientUpdate, *, region: str
) -> Client:
    client = await get_card(session, client_id)
    fields = data.model_dump(exclude_unset=True)
    if data.phones is not None:
        phones = _normalized(data.phones, region)
        await _check_free(session, phones, [], client_id)
        kept = {p.e164: p for p in client.phones}
        client.phones = [kept.get(p.e164) or p for p in phones]
    if data.emails is not None:
        await _check_free(session, [], data.emails, client_id)
        kept_e = {e.email: e for e in client.emails}
        client.emails = [kept_e.get(e) or ClientEmail(email=e) for e in dict.fromkeys(data.emails)]
    if data.contacts is not None:
        client.contacts = [
            ContactPerson(name=c.name, position=c.position, phone=c.phone, email=c.email)
            for c in data.contacts
        ]
    for key in ("phones", "emails", "contacts"):
        fields.pop(key, None)
    for key, value in fields.items():
        if key == "name" and value is None:
            continue
        setattr(client, key, value)
    await _flush(session)
    return client


async def get_card(session: AsyncSession, client_id: int) -> Client:
    client = await repository.get_card(session, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found", code="client.not_found")
    return client


def card_phones(card: Client, region: str) -> list[str]:
    """Every number to reach the client at: the card's, then its contact persons', E.164."""
    numbers = [p.e164 for p in card.phones]
    for contact in card.contacts:
        number = try_normalize_phone(contact.phone, region) if contact.phone else None
        if number:
            numbers.append(number)
    return list(dict.fromkeys(numbers))


def choose_phone(card: Client, wanted: str | None, region: str) -> str:
    """The number asked for (any written form, but it must be the client's), else the first."""
    numbers = card_phones(card, region)
    if wanted:
        try:
            number = normalize_phone(wanted, region)
        except InvalidPhone as exc:
            raise Invalid(str(exc), code="phone.invalid") from None
        if number not in numbers:
            raise Invalid(
                f"{number} is not a phone of client {card.id}", code="client.not_their_phone"
            )
        return number
    if not numbers:
        raise Invalid(
            f"{card.name} has no phone number: add one to the card first", code="client.no_phone"
        )
    return numbers[0]


async def open_card_for_unknown(
    session: AsyncSession,
    e164: str,
    *,
    name: str | None,
    lead_source: str,
    looked_up: bool = False,
) -> tuple[Client, bool]:
    """The card of the number, or a new one; safe when two transactions race for one number.

    `looked_up`: the caller has just found no card with the number in this transaction, so
    the look-up is not repeated (a card opened since by another one is caught at the insert)."""
    existing = None if looked_up else await repository.client_id_by_phone(session, e164)
    if existing is not None:
        card = await session.get(Client, existing)  # the bare row: callers want id and owner
        if card is not None:
            return card, False
    client = Client(
        kind="person",
        name=name or e164,
        lead_source=lead_source,
        phones=[ClientPhone(e164=e164, raw=e164, label="caller")],
        emails=[],
        contacts=[],
    )
    winner = await add_unless_taken(
        session, client, lambda: repository.client_id_by_phone(session, e164)
    )
    if winner is None:
        return client, True
    won = await session.get(Client, winner)
    if won is None:
        raise LookupError(f"client {winner} owning {e164} vanished")
    return won, False


async def add_unless_taken(
    session: AsyncSession, card: Client, owner: Callable[[], Awaitable[int | None]]
) -> int | None:
    """Add a new card in a savepoint; None if added, else the id of the card that took its number.

    For cards opened on the fly (an unknown caller, an unknown sender): two transactions may race
    for one number or address, and the unique index lets one win; the loser uses the winner's
    card. The savepoint's rollback has already dropped ours from the session.
    """
    try:
        async with session.begin_nested():
            session.add(card)
            await session.flush()
    except IntegrityError:
        winner = await owner()
        if winner is None:
            raise
        return winner
    return None
