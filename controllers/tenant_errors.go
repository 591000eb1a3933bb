package controllers

import (
	"fmt"
	"strings"
)

// unknownPlanError: the Tenant names a plan the platform's catalog lacks. Retrying cannot
// help; a spec or config change triggers the next reconcile.
type unknownPlanError struct {
	plan  string
	known []string
}

func (e *unknownPlanError) Error() string {
	return fmt.Sprintf("plan %q is not in the platform's plan catalog (known plans: %s)", e.plan, strings.Join(e.known, ", "))
}

// namespaceConflictError: the tenant's namespace name is taken by a namespace that is not
// this tenant's. Shoal never adopts or deletes it; a change to it triggers a reconcile.
type namespaceConflictError struct {
	namespace string
	owner     string
}

func (e *namespaceConflictError) Error() string {
	if e.owner == "" {
		return fmt.Sprintf("namespace %s already exists and does not belong to this tenant; rename or remove it", e.namespace)
	}
	return fmt.Sprintf("namespace %s already exists and belongs to tenant %q", e.namespace, e.owner)
}
