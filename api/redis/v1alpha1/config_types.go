package v1alpha1

// RedisConfig holds redis.conf directives: key (lower case, as in
// redis.conf) to value.
// +kubebuilder:validation:MaxProperties=128
// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z][a-z0-9-]{0,63}$'))",message="config keys are redis.conf directives: lower-case letters, digits and '-', starting with a letter (for example maxmemory-policy)"
type RedisConfig map[string]string
