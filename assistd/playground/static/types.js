// The parts of the Assistants API v2 objects that the playground reads. The server sends more; what is
// not named here is passed through untouched.
export {};
