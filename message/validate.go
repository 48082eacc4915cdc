package message

import "fmt"

// ValidateTopic checks RocketMQ's topic rules: not empty, at most 127 bytes,
// only characters from [%|a-zA-Z0-9_-]. Whether a valid topic may be sent to
// (system topics) is the broker's decision.
func ValidateTopic(topic string) error {
	return validateName("topic", topic, MaxTopicLengthV1)
}

// ValidateGroup checks RocketMQ's group rules: not empty, at most 255 bytes,
// only characters from [%|a-zA-Z0-9_-].
func ValidateGroup(group string) error {
	return validateName("group", group, MaxGroupLength)
}

func validateName(kind, name string, maxLen int) error {
	if name == "" {
		return fmt.Errorf("message: the %s name is empty", kind)
	}
	if len(name) > maxLen {
		return fmt.Errorf("message: the %s name is %d characters long, at most %d are allowed", kind, len(name), maxLen)
	}
	for i := 0; i < len(name); i++ {
		if !legalNameChar(name[i]) {
			return fmt.Errorf("message: the %s name %q contains the illegal character %q at %d; only [%%|a-zA-Z0-9_-] are allowed", kind, truncate(name), name[i], i)
		}
	}
	return nil
}

func legalNameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '%', c == '|', c == '_', c == '-':
		return true
	}
	return false
}
