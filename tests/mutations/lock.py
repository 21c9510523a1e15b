"""Mutations of the store's one-writer lock (pipeline/store/lock.py)."""

_LOCK = "tests/pipeline/test_lock.py"

MUTATIONS = [
    dict(
        id="lock-not-checked",
        file="pipeline/store/lock.py",
        old="            if why is None:\n                raise StoreLockedError(self._refusal(held))",
        new="            if why is None:\n                why = 'ignored'",
        tests=[f"{_LOCK}::test_second_acquire_is_refused_naming_holder_and_since"],
        why="an existing lock is taken over without asking whether its holder is alive",
    ),
    dict(
        id="lock-expiry-ignored",
        file="pipeline/store/lock.py",
        old='if float(record["expires_at"]) < now:',
        new="if False:",
        tests=[f"{_LOCK}::test_expired_lease_is_taken_over_with_a_warning"],
        why="a lease that expired (a crashed job on another host) blocks the store forever",
    ),
    dict(
        id="lock-takeover-no-recheck",
        file="pipeline/store/lock.py",
        old='if now is None or now["token"] != stale["token"]:',
        new="if now is None:",
        tests=[f"{_LOCK}::test_taking_over_a_record_that_changed_meanwhile_fails"],
        why="two jobs taking over one stale lock both win: the second replaces the first's lock",
    ),
    dict(
        id="lock-renew-ignores-owner",
        file="pipeline/store/lock.py",
        old='if held is None or held["token"] != self.token:\n                self.lost',
        new="if held is None:\n                self.lost",
        tests=[f"{_LOCK}::test_a_replaced_lock_is_reported_lost"],
        why="a holder whose lock was taken over renews it anyway: two writers believe they hold it",
    ),
]
