-- One name for one reason (docs/product.md §5.4, §6): an SMS prospect without a number to
-- text ended with status_reason 'no_numbers', a voice contact with 'no_numbers_left'. Both
-- are 'no_numbers_left' now, the text of `EndReason::NoNumbersLeft`.
UPDATE contacts SET status_reason = 'no_numbers_left' WHERE status_reason = 'no_numbers';
