-- +goose Up
-- keeper.NormalizeEmail folds ASCII letters only (SQLite's lower() does the same), so
-- that characters such as the Kelvin sign no longer match their ASCII look-alikes.
-- ASCII folding is finer than the Unicode folding it replaces: no two rows can collide.
UPDATE users SET email_normalized = lower(trim(email, ' ' || char(9, 10, 11, 12, 13)));

-- +goose Down
-- The Unicode folding cannot be computed in SQL; the ASCII form stays.
SELECT 1;
