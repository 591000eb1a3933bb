// Package controllers holds one reconciler per Shoal kind. A reconcile reads the object,
// keeps its finalizer, runs its phases in order, derives its conditions from what the
// phases saw and writes the status once, only when it changed.
package controllers
