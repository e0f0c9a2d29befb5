package platform

// PauseRotation makes r run pause between spending a refresh token and
// storing the next (nil: no pause), for the tests of that moment.
func PauseRotation(r *Refreshes, pause func()) { r.pause = pause }
