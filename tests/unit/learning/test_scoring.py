import numpy as np

from backend.learning.scoring import ls_scores, score_against


def test_most_informative_item_gets_the_lowest_score():
    informativeness = np.array([0.1, 0.9, 0.5, 0.7])
    scores = ls_scores(informativeness)
    assert np.argmin(scores) == 1
    assert list(np.argsort(scores)) == [1, 3, 2, 0]
    assert scores.min() == 0.0 and scores.max() < 1.0


def test_ties_keep_pool_order():
    assert list(np.argsort(ls_scores(np.array([0.5, 0.5, 0.5])), kind="stable")) == [0, 1, 2]


def test_new_items_land_where_they_would_rank_in_the_pool():
    pool = np.random.default_rng(0).random(200)
    # Scoring the pool against itself reproduces its own ranks (no ties in random floats).
    np.testing.assert_allclose(score_against(pool, pool), ls_scores(pool))
    assert score_against(pool, np.array([2.0]))[0] == 0.0  # more informative than everything
    assert score_against(pool, np.array([-1.0]))[0] == 1.0  # less informative than everything
