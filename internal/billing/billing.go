// Package billing is Shoal's adapter to Stripe: one customer and one subscription per
// tenant, on the Stripe price of the tenant's plan, and the subscription state that
// decides whether the tenant is suspended.
package billing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/stripe/stripe-go/v84"
)

// Billing talks to Stripe, or does nothing when billing is off.
type Billing struct {
	client *stripe.Client // nil when billing is off
	prices map[string]string
}

// New checks the config and builds a Stripe client. Without a secret key billing is off:
// New succeeds and Enabled reports false.
func New(cfg Config) (*Billing, error) {
	cfg.Default()
	if errs := cfg.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("invalid billing config: %w", errs.ToAggregate())
	}
	key, err := cfg.secretKey()
	if err != nil {
		return nil, err
	}
	if key == "" {
		return &Billing{}, nil
	}
	backendCfg := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(int64(*cfg.MaxNetworkRetries)),
		// Errors are returned to the caller, which reports them; the library's own log
		// lines would only repeat them.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
		HTTPClient: &http.Client{
			Timeout:   requestTimeout,
			Transport: errorBodyTransport{next: http.DefaultTransport},
		},
	}
	if cfg.APIBase != "" {
		backendCfg.URL = stripe.String(cfg.APIBase)
	}
	client := stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(backendCfg)))
	return &Billing{client: client, prices: maps.Clone(cfg.Prices)}, nil
}

// Enabled reports whether billing is on.
func (b *Billing) Enabled() bool { return b.client != nil }

// Customer is who a tenant's subscription is billed to.
type Customer struct {
	// TenantID identifies the tenant: it goes into the customer's metadata and the
	// idempotency keys, so it must stay the same across retries (the Tenant's UID also
	// tells apart a tenant deleted and created again under the same name).
	TenantID string
	// Name and Email are shown on invoices.
	Name  string
	Email string
}

// IDs are the Stripe objects a tenant already has, from its status; empty when not yet
// created.
type IDs struct {
	CustomerID     string
	SubscriptionID string
}

// State is a tenant's subscription as Stripe has it.
type State struct {
	CustomerID     string
	SubscriptionID string
	// Status is Stripe's subscription status: active, trialing, past_due, unpaid,
	// canceled, incomplete, incomplete_expired or paused.
	Status string
	// PriceID is the price the subscription bills.
	PriceID string
	// CurrentPeriodStart and CurrentPeriodEnd bound the current billing period; zero if
	// Stripe did not say.
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
}

// requestTimeout bounds one Stripe request, as stripe-go's own default client does.
const requestTimeout = 80 * time.Second

// metadataTenant is the metadata key that ties Stripe objects to their tenant.
const metadataTenant = "tenant"

// EnsureSubscription makes the tenant have a customer and a subscription on its plan's
// price: it creates what the IDs do not name yet, moves the subscription to the plan's
// price when the plan changed, and otherwise only reads the subscription. Creations carry
// idempotency keys derived from the tenant, so a retry after a lost response does not
// create a second customer or subscription.
func (b *Billing) EnsureSubscription(ctx context.Context, c Customer, plan string, ids IDs) (State, error) {
	if !b.Enabled() {
		return State{}, ErrDisabled
	}
	if c.TenantID == "" {
		return State{}, errors.New("billing: tenant ID is empty")
	}
	price, err := b.price(plan)
	if err != nil {
		return State{}, err
	}

	customerID := ids.CustomerID
	if customerID == "" {
		params := &stripe.CustomerCreateParams{Metadata: map[string]string{metadataTenant: c.TenantID}}
		if c.Name != "" {
			params.Name = stripe.String(c.Name)
		}
		if c.Email != "" {
			params.Email = stripe.String(c.Email)
		}
		params.IdempotencyKey = stripe.String("shoal-customer-" + c.TenantID)
		cust, err := b.client.V1Customers.Create(ctx, params)
		if err != nil {
			return State{}, fmt.Errorf("creating Stripe customer for tenant %s: %w", c.TenantID, err)
		}
		customerID = cust.ID
	}

	var sub *stripe.Subscription
	if ids.SubscriptionID == "" {
		params := &stripe.SubscriptionCreateParams{
			Customer: stripe.String(customerID),
			Items:    []*stripe.SubscriptionCreateItemParams{{Price: stripe.String(price)}},
			Metadata: map[string]string{metadataTenant: c.TenantID},
		}
		// The customer is part of the key: a new customer needs its own subscription.
		params.IdempotencyKey = stripe.String("shoal-subscription-" + c.TenantID + "-" + customerID)
		sub, err = b.client.V1Subscriptions.Create(ctx, params)
		if err != nil {
			return State{}, fmt.Errorf("creating Stripe subscription for tenant %s: %w", c.TenantID, err)
		}
	} else {
		sub, err = b.client.V1Subscriptions.Retrieve(ctx, ids.SubscriptionID, nil)
		if err != nil {
			return State{}, fmt.Errorf("reading Stripe subscription %s of tenant %s: %w", ids.SubscriptionID, c.TenantID, err)
		}
		// A canceled subscription cannot be changed; its status suspends the tenant.
		if item := firstItem(sub); item != nil && itemPrice(item) != price && sub.Status != stripe.SubscriptionStatusCanceled {
			sub, err = b.client.V1Subscriptions.Update(ctx, sub.ID, &stripe.SubscriptionUpdateParams{
				Items: []*stripe.SubscriptionUpdateItemParams{{ID: stripe.String(item.ID), Price: stripe.String(price)}},
			})
			if err != nil {
				return State{}, fmt.Errorf("moving Stripe subscription %s of tenant %s to plan %s (price %s): %w",
					ids.SubscriptionID, c.TenantID, plan, price, err)
			}
		}
	}
	return stateOf(customerID, sub), nil
}

// Subscription reads a subscription as Stripe has it now, changing nothing.
func (b *Billing) Subscription(ctx context.Context, subscriptionID string) (State, error) {
	if !b.Enabled() {
		return State{}, ErrDisabled
	}
	if subscriptionID == "" {
		return State{}, errors.New("billing: subscription ID is empty")
	}
	sub, err := b.client.V1Subscriptions.Retrieve(ctx, subscriptionID, nil)
	if err != nil {
		return State{}, fmt.Errorf("reading Stripe subscription %s: %w", subscriptionID, err)
	}
	customerID := ""
	if sub.Customer != nil {
		customerID = sub.Customer.ID
	}
	return stateOf(customerID, sub), nil
}

// CancelSubscription cancels a subscription now, for a deleted tenant. One already
// canceled or gone is not an error.
func (b *Billing) CancelSubscription(ctx context.Context, subscriptionID string) error {
	if !b.Enabled() {
		return ErrDisabled
	}
	if subscriptionID == "" {
		return nil
	}
	_, err := b.client.V1Subscriptions.Cancel(ctx, subscriptionID, nil)
	var stripeErr *stripe.Error
	if errors.As(err, &stripeErr) && stripeErr.HTTPStatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("canceling Stripe subscription %s: %w", subscriptionID, err)
	}
	return nil
}

// ShouldSuspend reports whether a subscription status means the tenant stops being served:
// payment failed past its retries, or the subscription ended.
func ShouldSuspend(status string) bool {
	switch stripe.SubscriptionStatus(status) {
	case stripe.SubscriptionStatusPastDue, stripe.SubscriptionStatusUnpaid, stripe.SubscriptionStatusCanceled:
		return true
	default:
		return false
	}
}

func (b *Billing) price(plan string) (string, error) {
	price, ok := b.prices[plan]
	if !ok {
		return "", fmt.Errorf("%w: plan %q has no Stripe price in the billing config (priced plans: %v)",
			ErrUnknownPlan, plan, slices.Sorted(maps.Keys(b.prices)))
	}
	return price, nil
}

func firstItem(sub *stripe.Subscription) *stripe.SubscriptionItem {
	if sub == nil || sub.Items == nil || len(sub.Items.Data) == 0 {
		return nil
	}
	return sub.Items.Data[0]
}

func itemPrice(item *stripe.SubscriptionItem) string {
	if item.Price == nil {
		return ""
	}
	return item.Price.ID
}

func stateOf(customerID string, sub *stripe.Subscription) State {
	s := State{CustomerID: customerID, SubscriptionID: sub.ID, Status: string(sub.Status)}
	if item := firstItem(sub); item != nil {
		s.PriceID = itemPrice(item)
		if item.CurrentPeriodStart > 0 {
			s.CurrentPeriodStart = time.Unix(item.CurrentPeriodStart, 0).UTC()
		}
		if item.CurrentPeriodEnd > 0 {
			s.CurrentPeriodEnd = time.Unix(item.CurrentPeriodEnd, 0).UTC()
		}
	}
	return s
}

// billingError is a constant error, so sentinels are not package-level variables.
type billingError string

func (e billingError) Error() string { return string(e) }

const (
	// ErrDisabled is returned by calls made while billing is off.
	ErrDisabled = billingError("billing is off: no Stripe secret key configured")
	// ErrUnknownPlan says the plan has no Stripe price: a platform config error, not
	// something a retry fixes.
	ErrUnknownPlan = billingError("billing config error")
)

// IsUnavailable reports an error that says Stripe could not be reached or failed on its
// side (network error, 5xx, rate limited), so retrying later may succeed.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var stripeErr *stripe.Error
	if errors.As(err, &stripeErr) {
		return stripeErr.HTTPStatusCode >= 500 || stripeErr.HTTPStatusCode == http.StatusTooManyRequests
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
