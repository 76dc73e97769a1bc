package app

import "github.com/go-chi/chi/v5"

// Mux is the router, for tests that check it serves exactly the declared
// routes.
func (a *App) Mux() chi.Routes { return a.mux }

// FlushAccessLog returns once the line of every request answered so far
// is written.
func (a *App) FlushAccessLog() { a.metrics.access.flush() }
