package personal_test

import (
	"bytes"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"passerelle/domain"
	"passerelle/eventstore/personal"
)

// sealedFields are the event fields that can carry personal data of a
// pupil or a guardian: Cipher.Seal moves each into the event's sealed blob.
var sealedFields = []string{
	"PupilRegistered.FirstName", "PupilRegistered.LastName", "PupilRegistered.BirthDate",
	"PupilRegistered.Guardians[].Name", "PupilRegistered.Guardians[].Email", "PupilRegistered.Guardians[].Phone",
	"ApplicationSubmitted.Motivation",
	"ApplicationWithdrawn.Reason",         // the pupil's words
	"ConventionSignatureAdded.SignerName", // for the pupil's and the guardians' roles
	"ConventionDrafted.PupilFirstName", "ConventionDrafted.PupilLastName",
	"ConventionDrafted.Guardians[].Name", "ConventionDrafted.Guardians[].Email", "ConventionDrafted.Guardians[].Phone",
}

// notPersonal are the other text fields of events, each with why it holds
// nothing personal of a pupil or guardian. A new text field must be added
// to one list or the other, or TestEveryTextFieldIsClassified fails.
var notPersonal = map[string]string{}

func init() {
	declare := func(why string, fields ...string) {
		for _, f := range fields {
			notPersonal[f] = why
		}
	}
	declare("an opaque id chosen by the server",
		"EmployerRegistered.EmployerID", "PupilRegistered.PupilID", "PupilForgotten.PupilID",
		"OfferPosted.OfferID", "OfferPosted.EmployerID", "OfferAmended.OfferID", "OfferReopened.OfferID", "OfferWithdrawn.OfferID",
		"SeatHeld.OfferID", "SeatHeld.ApplicationID", "SeatHeld.PupilID", "SeatReleased.OfferID", "SeatReleased.ApplicationID",
		"ApplicationSubmitted.ApplicationID", "ApplicationSubmitted.OfferID", "ApplicationSubmitted.EmployerID", "ApplicationSubmitted.PupilID",
		"ApplicationRead.ApplicationID", "ApplicationAccepted.ApplicationID", "ApplicationRejected.ApplicationID",
		"ApplicationWithdrawn.ApplicationID", "ApplicationWithdrawn.PupilID", "ApplicationCancelled.ApplicationID", "ApplicationExpired.ApplicationID",
		"PupilApplied.PupilID", "PupilApplied.ApplicationID", "PupilApplied.OfferID",
		"PupilWeeksReserved.PupilID", "PupilWeeksReserved.ApplicationID", "PupilWeeksReleased.PupilID", "PupilWeeksReleased.ApplicationID",
		"ApplicationConfirmed.ApplicationID", "ApplicationConfirmed.ConventionID",
		"ConventionDrafted.ConventionID", "ConventionDrafted.ApplicationID", "ConventionDrafted.OfferID", "ConventionDrafted.EmployerID", "ConventionDrafted.PupilID",
		"ConventionCompleted.ConventionID", "ConventionCancelled.ConventionID", "ConventionSignatureAdded.ConventionID",
		"ConventionSignatureAdded.PupilID", "ConventionSigned.ConventionID", "ApplicationOfferWithdrawn.ApplicationID",
		"OperatorEmployersLinked.OperatorID", "OperatorEmployersLinked.EmployerIDs[]",
		"OfferDeleted.OfferID", "PartnerOfferChanged.OfferID", "OperatorRegistered.OperatorID",
		"PupilWishesRecorded.PupilID", "PupilWishesRecorded.Offers[]",
		"CampaignCreated.CampaignID", "RoundComputed.RoundID", "RoundComputed.CampaignID", "RoundMatched.RoundID",
		"RoundMatched.Matches[].PupilID", "RoundMatched.Matches[].OfferID", "RoundPublished.RoundID")
	partner := []string{"OperatorID", "RemoteID", "Permalink", "EmployerDescription", "EmployerWebsite", "Street", "Zipcode", "City", "LunchBreak"}
	for _, ev := range []string{"OfferPosted", "PartnerOfferChanged"} {
		for _, f := range partner {
			declare("an operator's reference or an offer's terms it publishes (partner API v2)", ev+".Partner."+f)
		}
	}
	declare("an operator's account: an organisation's name, its professional sign-in e-mail, a password hash, département codes",
		"OperatorRegistered.Name", "OperatorRegistered.Email", "OperatorRegistered.PasswordHash", "OperatorRegistered.Departments[]")
	declare("a public code of the reference data (UAI, SIRET, commune, département, sector, week, grade, role, hash, document version)",
		"EmployerRegistered.SIRET", "EmployerRegistered.Kind", "EmployerRegistered.CommuneCode", "EmployerRegistered.Department",
		"SchoolRegistered.UAI", "SchoolRegistered.Kind", "SchoolRegistered.CommuneCode", "SchoolRegistered.Department", "SchoolRegistered.EducationPriority",
		"PupilRegistered.SchoolUAI", "PupilRegistered.Department", "PupilRegistered.Grade",
		"OfferPosted.EmployerKind", "OfferPosted.Sector", "OfferPosted.Grades[]", "OfferPosted.Weeks[]", "OfferPosted.CommuneCode", "OfferPosted.Department",
		"OfferPosted.Reserved.Schools[]", "OfferAmended.Weeks[]", "OfferAmended.Reserved.Schools[]",
		"SeatHeld.Weeks[]", "SeatReleased.Weeks[]", "ApplicationSubmitted.SchoolUAI", "ApplicationSubmitted.Grade", "ApplicationSubmitted.Weeks[]",
		"ApplicationExpired.Rule", "PupilApplied.Weeks[]", "PupilWeeksReserved.Weeks[]",
		"ConventionDrafted.EmployerSIRET", "ConventionDrafted.SchoolUAI", "ConventionDrafted.Weeks[]", "ConventionDrafted.StartDate", "ConventionDrafted.EndDate",
		"ConventionDrafted.CommuneCode", "ConventionDrafted.RequiredRoles[]", "ConventionDrafted.DocumentHash", "ConventionDrafted.DocumentVersion",
		"ConventionCompleted.Party", "ConventionCompleted.RequiredRoles[]", "ConventionCompleted.DocumentHash", "ConventionCompleted.DocumentVersion",
		"ConventionSignatureAdded.Role", "ConventionSignatureAdded.DocumentHash", "ConventionSigned.DocumentHash",
		"TargetSet.Scope", "TargetSet.Code", "TargetSet.Metric", "PupilWishesRecorded.Sectors[]", "PupilWishesRecorded.Weeks[]",
		"CampaignCreated.Scope.Departments[]", "CampaignCreated.Scope.Communes[]", "CampaignCreated.Scope.Grades[]", "CampaignCreated.Scope.Weeks[]",
		"RoundMatched.Matches[].Weeks[]")
	declare("an opaque id chosen by the server (group bookings and the applications they make)",
		"ApplicationSubmitted.BookingID", "GroupBooked.BookingID", "GroupBooked.OfferID", "GroupBooked.EmployerID",
		"GroupBooked.Seats[].ApplicationID", "GroupBooked.Seats[].PupilID", "SeatsBooked.OfferID", "SeatsBooked.BookingID",
		"SeatsBooked.Seats[].ApplicationID", "SeatsBooked.Seats[].PupilID")
	declare("a public code of the reference data (UAI, week, grade) in a group booking",
		"GroupBooked.SchoolUAI", "GroupBooked.Weeks[]", "GroupBooked.Seats[].Grade",
		"SeatsBooked.SchoolUAI", "SeatsBooked.Weeks[]", "SeatsBooked.Seats[].Grade")
	declare("who proposed a pupil: the desk's actor (a school's UAI, a back-office account, an allocation round) and its role, never the pupil's side",
		"ApplicationSubmitted.ProposedBy.ID", "ApplicationSubmitted.ProposedBy.Role")
	declare("the name the back office gives a campaign", "CampaignCreated.Name")
	declare("a class of a school, shared by its pupils",
		"PupilRegistered.ClassName", "ConventionDrafted.ClassName")
	declare("an employer's or a school's public details, or an offer's terms they publish",
		"EmployerRegistered.Name", "EmployerRegistered.Address", "SchoolRegistered.Name",
		"OfferPosted.EmployerName", "OfferPosted.Title", "OfferPosted.Description", "OfferPosted.Address",
		"OfferPosted.DailyHours.Start", "OfferPosted.DailyHours.End",
		"OfferAmended.Title", "OfferAmended.Description", "OfferAmended.DailyHours.Start", "OfferAmended.DailyHours.End",
		"ConventionDrafted.EmployerName", "ConventionDrafted.SchoolName", "ConventionDrafted.OfferTitle", "ConventionDrafted.Description",
		"ConventionDrafted.Address", "ConventionDrafted.DailyHours.Start", "ConventionDrafted.DailyHours.End",
		"OfferPosted.CoHosts[].EmployerID", "OfferPosted.CoHosts[].Name", "ConventionDrafted.CoHosts[].EmployerID", "ConventionDrafted.CoHosts[].Name")
	declare("a professional acting for the employer or the school (tutor, referent teacher), not the pupil's side",
		"ConventionCompleted.Tutor.Name", "ConventionCompleted.Tutor.Email", "ConventionCompleted.Tutor.Phone", "ConventionCompleted.Activities",
		"ConventionCompleted.ReferentTeacher.Name", "ConventionCompleted.ReferentTeacher.Email", "ConventionCompleted.ReferentTeacher.Phone")
	declare("a reason given by the employer, the school or the back office about the offer or the placement, shown to the parties",
		"OfferWithdrawn.Reason", "ApplicationRejected.Reason", "ApplicationCancelled.Reason", "ConventionCancelled.Reason")
}

// textFields lists the paths of every text field (string, or slice of
// strings) of t, through structs, pointers and slices; the sealed blob is
// the output of sealing, not a field to classify.
func textFields(prefix string, t reflect.Type) []string {
	switch t.Kind() {
	case reflect.Pointer:
		return textFields(prefix, t.Elem())
	case reflect.String:
		return []string{prefix}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		return textFields(prefix+"[]", t.Elem())
	case reflect.Struct:
		if t == reflect.TypeFor[domain.Sealed]() || t.PkgPath() == "time" {
			return nil
		}
		var out []string
		for i := range t.NumField() {
			out = append(out, textFields(prefix+"."+t.Field(i).Name, t.Field(i).Type)...)
		}
		return out
	}
	return nil
}

// TestEveryTextFieldIsClassified walks every event type the domain
// registers: each text field is sealed or declared not personal.
func TestEveryTextFieldIsClassified(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range domain.EventTypes() {
		e, err := domain.Decode(typ, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range textFields(typ, reflect.TypeOf(e).Elem()) {
			seen[f] = true
			_, declared := notPersonal[f]
			switch sealed := slices.Contains(sealedFields, f); {
			case sealed && declared:
				t.Errorf("%s is declared both sealed and not personal", f)
			case !sealed && !declared:
				t.Errorf("%s: a new text field of an event; seal it in personal.Cipher (it may carry a pupil's or a guardian's data) or declare in notPersonal why it cannot", f)
			}
		}
	}
	for _, f := range slices.Concat(sealedFields, slices.Collect(maps.Keys(notPersonal))) {
		if !seen[f] {
			t.Errorf("%s is classified but no event has it", f)
		}
	}
}

// TestSealedFieldsLeaveNoTrace fills every text field of every event with
// a marker naming it, seals the event as the commands do, and checks the
// stored JSON: no marker of a sealed field is left, and opening gives
// every one back.
func TestSealedFieldsLeaveNoTrace(t *testing.T) {
	keys, err := personal.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := personal.NewCipher(keys)
	for _, typ := range domain.EventTypes() {
		e, _ := domain.Decode(typ, []byte("{}"))
		marked := fill(typ, reflect.ValueOf(e).Elem())
		sealed, err := c.Seal(e)
		if err != nil {
			t.Fatalf("seal %s: %v", typ, err)
		}
		stored, err := domain.Encode(sealed)
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.Decode(typ, stored)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Open(back); err != nil {
			t.Fatal(err)
		}
		opened, _ := domain.Encode(back)
		for _, f := range marked {
			m := []byte(marker(f))
			if slices.Contains(sealedFields, f) && bytes.Contains(stored, m) {
				t.Errorf("%s is stored in clear: %s", f, stored)
			}
			if !bytes.Contains(opened, m) {
				t.Errorf("%s is lost by sealing and opening: %s", f, opened)
			}
		}
	}
}

func marker(path string) string { return "{{" + strings.ReplaceAll(path, "[]", "") + "}}" }

// fill sets every text field to its marker, a Role to the pupil's (whose
// signer is sealed), allocates pointers and one element of each slice, and
// returns the paths it marked.
func fill(path string, v reflect.Value) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem() == reflect.TypeFor[domain.Sealed]() {
			return nil
		}
		v.Set(reflect.New(v.Type().Elem()))
		return fill(path, v.Elem())
	case reflect.String:
		if v.Type() == reflect.TypeFor[domain.Role]() {
			v.SetString(string(domain.RolePupil))
			return nil
		}
		v.SetString(marker(path))
		return []string{path}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		return fill(path+"[]", v.Index(0))
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return nil
		}
		var out []string
		for i := range v.NumField() {
			out = append(out, fill(path+"."+v.Type().Field(i).Name, v.Field(i))...)
		}
		return out
	}
	return nil
}
