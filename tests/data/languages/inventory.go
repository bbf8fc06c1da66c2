// Package inventory keeps stock counts for a small shop.
package inventory

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownItem is returned when an item was never stocked.
var ErrUnknownItem = errors.New("unknown item")

// Stock maps item names to the units on hand.
type Stock struct {
	units map[string]int
}

// NewStock returns an empty stock.
func NewStock() *Stock {
	return &Stock{units: make(map[string]int)}
}

// Add puts n units of item on the shelf.
func (s *Stock) Add(item string, n int) error {
	if n <= 0 {
		return fmt.Errorf("add %q: count must be positive, got %d", item, n)
	}
	s.units[strings.ToLower(item)] += n
	return nil
}

// Take removes n units of item, failing when fewer are left.
func (s *Stock) Take(item string, n int) error {
	key := strings.ToLower(item)
	have, ok := s.units[key]
	if !ok {
		return ErrUnknownItem
	}
	if have < n {
		return fmt.Errorf("take %q: only %d left", item, have)
	}
	s.units[key] = have - n
	return nil
}

// Report lists the items in name order, one per line.
func (s *Stock) Report() string {
	names := make([]string, 0, len(s.units))
	for name := range s.units {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%-12s %5d\n", name, s.units[name])
	}
	return b.String()
}
