"""The contact results figures, pure: effectiveness leaves wrong numbers out, postponements
are averaged over the clients postponed at least once, the team sums a client across users."""

from __future__ import annotations

from tests.crm_core.results_fold import figures, fold


def test_only_wrong_numbers_have_no_effectiveness() -> None:
    f = figures([(1, "wrong_number", 3)])
    assert (f["contacts"], f["wrong_number"], f["effectiveness_percent"]) == (3, 3, None)
    assert (f["clients_postponed"], f["postponements_per_client_avg"]) == (0, None)
    assert f["postponements_per_client_max"] == 0


def test_effectiveness_and_postponements() -> None:
    # client 1 postponed 4x, client 2 once, client 3 never; 1 offer, 1 sale, 1 wrong number
    f = figures(
        [
            (1, "postponed", 4),
            (2, "postponed", 1),
            (3, "offer_sent", 1),
            (3, "sale", 1),
            (3, "wrong_number", 1),
            (2, "refused", 1),
        ]
    )
    assert f["contacts"] == 9
    assert f["effectiveness_percent"] == round(2 * 100 / 8, 1)
    assert (f["clients_postponed"], f["postponements_per_client_avg"]) == (2, 2.5)
    assert f["postponements_per_client_max"] == 4


def test_the_team_sums_a_client_across_managers() -> None:
    per_user, team = fold([(7, 1, "postponed", 2), (8, 1, "postponed", 3), (None, 2, "sale", 1)])
    assert per_user[7]["postponements_per_client_max"] == 2
    assert per_user[8]["postponements_per_client_max"] == 3
    assert per_user[None]["sale"] == 1
    assert (team["contacts"], team["postponements_per_client_max"]) == (6, 5)
    assert team["effectiveness_percent"] == round(1 * 100 / 6, 1)
