"""A seeded population of cards and merchants, and its legitimate traffic drawn in numpy chunks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (country, share of cards and merchants, currency)
COUNTRIES: tuple[tuple[str, float, str], ...] = (
    ("DE", 0.24, "EUR"),
    ("FR", 0.18, "EUR"),
    ("NL", 0.10, "EUR"),
    ("ES", 0.10, "EUR"),
    ("IT", 0.10, "EUR"),
    ("BE", 0.05, "EUR"),
    ("AT", 0.05, "EUR"),
    ("GB", 0.09, "GBP"),
    ("PL", 0.05, "PLN"),
    ("US", 0.04, "USD"),
)
# Where cards are never at home: fraud abroad shows up here too.
FAR_COUNTRIES: tuple[str, ...] = ("BR", "TH", "ZA", "MX", "ID", "AE")

PHYSICAL, HYBRID, ONLINE, ATM_KIND = 0, 1, 2, 3
# (category, kind, price level relative to the card's typical amount, share of merchants)
CATEGORIES: tuple[tuple[str, int, float, float], ...] = (
    ("grocery", PHYSICAL, 0.9, 0.20),
    ("restaurant", PHYSICAL, 1.0, 0.15),
    ("fuel", PHYSICAL, 1.6, 0.07),
    ("pharmacy", PHYSICAL, 0.7, 0.05),
    ("retail", HYBRID, 1.5, 0.14),
    ("electronics", HYBRID, 4.0, 0.05),
    ("travel", HYBRID, 6.0, 0.04),
    ("entertainment", HYBRID, 1.0, 0.06),
    ("jewelry", HYBRID, 5.0, 0.02),
    ("online_services", ONLINE, 0.6, 0.08),
    ("marketplace", ONLINE, 1.3, 0.06),
    ("atm", ATM_KIND, 2.5, 0.08),
)
CHANNELS: tuple[str, ...] = ("pos", "ecom", "atm", "moto")
POS, ECOM, ATM, MOTO = 0, 1, 2, 3

# Relative activity per UTC hour of four daily routines; each card follows one, shifted.
_H = np.arange(24, dtype=float)


def _bump(center: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(_H - center), 24 - np.abs(_H - center))
    return np.exp(-0.5 * (d / width) ** 2)


HOUR_PROFILES = np.stack(
    [
        0.02 + _bump(13, 3.5),  # daytime
        0.02 + _bump(8, 1.5) + _bump(18, 2.0),  # commuter
        0.02 + 0.4 * _bump(13, 3) + _bump(20, 2.0),  # evening
        0.05 + _bump(23, 2.5),  # night owl
    ]
)
PROFILE_SHARES = (0.40, 0.25, 0.25, 0.10)
K_PREFERRED = 16

# Drift of the legitimate traffic (see streamlearn.simulate: which features move).
DRIFT_AMOUNT_FACTOR = 1.35
DRIFT_ECOM_SHIFT = 0.30


@dataclass
class Background:
    """One chunk of legitimate traffic, as plain lists for a fast per-event loop."""

    cards: list[int]
    merchants: list[int]
    amounts: list[float]
    channels: list[int]
    devices: list[int]


class Population:
    """Cards with their own habits and merchants with categories, countries and price levels.

    Every draw uses the numpy Generator passed in, so a population and its traffic are
    reproducible from one seed.
    """

    def __init__(self, rng: np.random.Generator, cards: int = 5000, merchants: int = 500) -> None:
        if cards < 1 or merchants < 1:
            raise ValueError("a population needs at least one card and one merchant")
        self.n_cards = cards
        self.n_merchants = merchants
        self._build_merchants(rng, merchants)
        self._build_cards(rng, cards)

    # -- merchants -----------------------------------------------------------------------
    def _build_merchants(self, rng: np.random.Generator, n: int) -> None:
        cat_share = np.array([s for *_, s in CATEGORIES])
        cat = rng.choice(len(CATEGORIES), size=n, p=cat_share / cat_share.sum())
        if n >= len(CATEGORIES):  # every category exists at least once
            cat[: len(CATEGORIES)] = np.arange(len(CATEGORIES))
        country_share = np.array([s for _, s, _ in COUNTRIES])
        country = rng.choice(len(COUNTRIES), size=n, p=country_share / country_share.sum())
        self.m_category = cat
        self.m_kind = np.array([CATEGORIES[c][1] for c in cat])
        self.m_country = country
        base = np.array([CATEGORIES[c][2] for c in cat])
        self.m_price = base * rng.lognormal(0.0, 0.3, size=n)
        # Heavy-tailed popularity: a few merchants see a large share of the traffic.
        rank = rng.permutation(n)
        pop = 1.0 / (rank + 5.0) ** 0.9
        self.m_pop = pop / pop.sum()
        self.merchant_cdf = np.cumsum(self.m_pop)
        self.merchant_cdf /= self.merchant_cdf[-1]
        width = max(4, len(str(n - 1)))
        self.merchant_ids = [f"m-{i:0{width}d}" for i in range(n)]
        # (id, category, country, currency) looked up once per event
        self.merchant_info = [
            (
                self.merchant_ids[i],
                CATEGORIES[cat[i]][0],
                COUNTRIES[country[i]][0],
                COUNTRIES[country[i]][2],
            )
            for i in range(n)
        ]

    def pool(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Merchant indices under mask and their popularity CDF (all merchants if none)."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            idx = np.arange(self.n_merchants)
        cdf = np.cumsum(self.m_pop[idx])
        return idx, cdf / cdf[-1]

    # -- cards ---------------------------------------------------------------------------
    def _build_cards(self, rng: np.random.Generator, n: int) -> None:
        country_share = np.array([s for _, s, _ in COUNTRIES])
        self.c_home = rng.choice(len(COUNTRIES), size=n, p=country_share / country_share.sum())
        self.c_median = rng.lognormal(np.log(30.0), 0.55, size=n)
        self.c_sigma = rng.uniform(0.35, 0.7, size=n)
        act = rng.lognormal(0.0, 0.8, size=n)
        self.c_activity = act / act.mean()
        self.c_ecom = rng.beta(2.0, 4.0, size=n)
        self.c_p_pref = rng.beta(17.0, 3.0, size=n)
        profile = rng.choice(len(HOUR_PROFILES), size=n, p=PROFILE_SHARES)
        shift = rng.integers(-2, 3, size=n)
        # weight[h, c]: how likely card c is the one paying at UTC hour h
        hours = (np.arange(24)[:, None] - shift[None, :]) % 24
        weight = HOUR_PROFILES[profile[None, :], hours] * self.c_activity[None, :]
        self.hour_total = weight.sum(axis=1)
        self.hour_cdf = np.cumsum(weight, axis=1)
        self.hour_cdf /= self.hour_cdf[:, -1:]
        self.c_profile = profile
        self.c_shift = shift
        self._build_preferred(rng, n)
        width = max(6, len(str(n - 1)))
        self.card_ids = [f"card-{i:0{width}d}" for i in range(n)]
        # two devices per card for online payments; index 2n means "no device"
        devices = [f"dev-{i:0{width}d}-{k}" for i in range(n) for k in (0, 1)]
        self.devices: list[str | None] = [*devices, None]

    def _build_preferred(self, rng: np.random.Generator, n: int) -> None:
        """Each card's regular merchants: mostly at home, online ones by its e-commerce taste."""
        online_idx, online_cdf = self.pool(self.m_kind == ONLINE)
        pref = np.empty((n, K_PREFERRED), dtype=np.int64)
        u = rng.random((n, K_PREFERRED))
        go_online = rng.random((n, K_PREFERRED)) < 0.6 * self.c_ecom[:, None]
        for k in range(len(COUNTRIES)):
            rows = self.c_home == k
            if not rows.any():
                continue
            idx, cdf = self.pool((self.m_country == k) & (self.m_kind != ONLINE))
            pref[rows] = idx[np.minimum(np.searchsorted(cdf, u[rows]), idx.size - 1)]
        pick = np.minimum(np.searchsorted(online_cdf, u[go_online]), online_idx.size - 1)
        pref[go_online] = online_idx[pick]
        self.pref = pref
        k_card = rng.integers(4, K_PREFERRED + 1, size=n)
        ranks = np.arange(1, K_PREFERRED + 1, dtype=float)
        w = np.where(ranks[None, :] <= k_card[:, None], 1.0 / ranks[None, :], 0.0)
        cdf = np.cumsum(w, axis=1)
        self.pref_cdf = cdf / cdf[:, -1:]
        self.pref_cdf[:, -1] = 1.0

    # -- traffic -------------------------------------------------------------------------
    @property
    def hourly_intensity(self) -> np.ndarray:
        """Relative traffic per UTC hour (mean 1): the daily cycle of the whole population."""
        return self.hour_total / self.hour_total.mean()

    def preferred_of(self, card: int) -> list[int]:
        """The distinct regular merchants of one card."""
        k = int(np.searchsorted(self.pref_cdf[card], 1.0 - 1e-12)) + 1
        return list(dict.fromkeys(self.pref[card, :k].tolist()))

    def draw(self, rng: np.random.Generator, times: np.ndarray, drifted: np.ndarray) -> Background:
        """Legitimate payments at the given event times (ms); drifted marks post-drift events."""
        n = times.size
        hours = (times // 3_600_000) % 24
        u = rng.random((6, n))
        cards = np.empty(n, dtype=np.int64)
        for h in np.unique(hours):
            sel = hours == h
            cards[sel] = np.searchsorted(self.hour_cdf[h], u[0, sel])
        np.minimum(cards, self.n_cards - 1, out=cards)
        k = (self.pref_cdf[cards] < u[1][:, None]).sum(axis=1)
        elsewhere = np.minimum(np.searchsorted(self.merchant_cdf, u[2]), self.n_merchants - 1)
        merchants = np.where(u[3] < self.c_p_pref[cards], self.pref[cards, k], elsewhere)
        kind = self.m_kind[merchants]
        ecom_p = self.c_ecom[cards] + DRIFT_ECOM_SHIFT * drifted
        hybrid = np.where(u[4] < ecom_p, ECOM, np.where(u[4] > 0.97, MOTO, POS))
        channels = np.select(
            [kind == PHYSICAL, kind == ONLINE, kind == ATM_KIND], [POS, ECOM, ATM], hybrid
        )
        noise = rng.standard_normal(n) * self.c_sigma[cards]
        amounts = self.c_median[cards] * self.m_price[merchants] * np.exp(noise)
        amounts *= np.where(drifted, DRIFT_AMOUNT_FACTOR, 1.0)
        amounts = np.where(
            channels == ATM,
            np.maximum(20.0, np.round(amounts / 20.0) * 20.0),
            np.maximum(0.5, np.round(amounts, 2)),
        )
        devices = np.where(channels == ECOM, 2 * cards + (u[5] > 0.8), 2 * self.n_cards)
        lists = (cards, merchants, amounts, channels, devices)
        return Background(*(a.tolist() for a in lists))  # type: ignore[arg-type]
