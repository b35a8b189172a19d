package main

import "github.com/vmdb2-go/vmdb2/steps"

// setCompat handles --compat VERSION: the vmdb2 release whose images the
// build gives where 0.26 and 0.41 differ (steps.ParseCompat).
func (o *options) setCompat(v string) error {
	c, err := steps.ParseCompat(v)
	if err != nil {
		return usageError{err.Error()}
	}
	o.compat = c
	return nil
}
