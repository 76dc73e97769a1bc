package esdb

// LeaderRetries is how many attempts a not-leader answer gets.
const LeaderRetries = leaderRetries
