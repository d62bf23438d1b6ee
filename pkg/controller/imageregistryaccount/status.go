package imageregistryaccount

import (
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/image-registry-operator/image-registry-operator/pkg/apis/registry/v1alpha1"
	"github.com/image-registry-operator/image-registry-operator/pkg/authn"
)

// Reasons of a static account's Ready condition. Those marked "bad input"
// come with a Warning event of the same reason when the condition turns to
// them.
const (
	// ReasonActive: logins with the account work (Ready=True).
	ReasonActive = "Active"
	// ReasonExpired: spec.expiresAt has passed; every login fails.
	ReasonExpired = "Expired"
	// ReasonInvalidPassword (bad input): an entry of spec.passwords is no
	// bcrypt hash, so no password verifies it.
	ReasonInvalidPassword = "InvalidPassword"
	// ReasonInvalidLoginName (bad input): no login can name the account:
	// its login name holds a space or control character, or is too long.
	ReasonInvalidLoginName = "InvalidLoginName"
)

var metav1UpdateOptions = metav1.UpdateOptions{}

// LoginName is the name clients log in with: the authenticator's username
// (spec.username, else metadata.name), and for a rotating account the
// current rotation's name <username>/<rotation>.
func LoginName(a *v1alpha1.ImageRegistryAccount) string {
	u := authn.Username(a)
	if a.Spec.Rotation != nil {
		return authn.RotatingLogin(u, *a.Spec.Rotation)
	}
	return u
}

// setStatus writes the status a static account has at now into a.
func setStatus(a *v1alpha1.ImageRegistryAccount, now time.Time) {
	s := &a.Status
	s.ObservedGeneration = a.Generation
	s.LoginName = LoginName(a)
	cond := metav1.Condition{
		Type:               v1alpha1.ConditionReady,
		ObservedGeneration: a.Generation,
		LastTransitionTime: metav1.NewTime(now),
	}
	cond.Status, cond.Reason, cond.Message = readiness(a, s.LoginName, now)
	meta.SetStatusCondition(&s.Conditions, cond)
}

func readiness(a *v1alpha1.ImageRegistryAccount, login string, now time.Time) (metav1.ConditionStatus, string, string) {
	if _, ok := authn.ParseLogin(login); !ok {
		return metav1.ConditionFalse, ReasonInvalidLoginName,
			fmt.Sprintf("the login name (%d bytes) is empty, longer than %d bytes or holds a space or control character: no login can name it; set spec.username", len(login), authn.MaxUsernameLength)
	}
	for i, h := range a.Spec.Passwords {
		// Cost parses the hash without comparing anything: cheap, and the
		// hash itself never reaches the message.
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return metav1.ConditionFalse, ReasonInvalidPassword,
				fmt.Sprintf("spec.passwords[%d] is not a bcrypt hash, so no password verifies it (make one with: htpasswd -nbBC 10 \"\" PASSWORD | tr -d ':\\n')", i)
		}
	}
	if exp := a.Spec.ExpiresAt; exp != nil {
		at := exp.UTC().Format(time.RFC3339)
		if !now.Before(exp.Time) {
			return metav1.ConditionFalse, ReasonExpired, fmt.Sprintf("spec.expiresAt %s has passed: logins fail", at)
		}
		return metav1.ConditionTrue, ReasonActive, fmt.Sprintf("log in as %q until %s", login, at)
	}
	return metav1.ConditionTrue, ReasonActive, fmt.Sprintf("log in as %q; no expiry", login)
}

// statusEqual compares statuses as the API stores them (times in seconds).
func statusEqual(a, b v1alpha1.ImageRegistryAccountStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func readyCondition(s v1alpha1.ImageRegistryAccountStatus) *metav1.Condition {
	return meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
}

func readyReason(s v1alpha1.ImageRegistryAccountStatus) string {
	if c := readyCondition(s); c != nil {
		return c.Reason
	}
	return ""
}

func readyMessage(s v1alpha1.ImageRegistryAccountStatus) string {
	if c := readyCondition(s); c != nil {
		return c.Message
	}
	return ""
}

func badInput(reason string) bool {
	return reason == ReasonInvalidPassword || reason == ReasonInvalidLoginName
}
