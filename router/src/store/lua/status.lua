-- Counsellor ARGV[3] sets their status ARGV[4] (available, away); then free room may be used.
set_status(ARGV[3], ARGV[4])
dispatch()
return finish()
