package seed

import (
	"fmt"
	"strings"
)

// The words the generated campaign is written with: people, schools,
// employers and offers as they appear on the real platforms.
var (
	firstNames = []string{"Lina", "Adam", "Emma", "Mohamed", "Jade", "Gabriel", "Louise", "Raphaël", "Ambre", "Arthur",
		"Alice", "Louis", "Rose", "Jules", "Chloé", "Maël", "Lucie", "Noah", "Léa", "Sacha", "Inès", "Hugo", "Anna",
		"Nathan", "Mila", "Ethan", "Julia", "Yanis", "Zoé", "Ibrahim", "Manon", "Théo", "Camille", "Ayoub", "Sarah",
		"Tom", "Léna", "Enzo", "Nour", "Lucas", "Maëlys", "Rayan", "Clara", "Timéo", "Yasmine", "Paul", "Eva", "Samuel",
		"Lou", "Kaïs", "Aïcha", "Mathis", "Agathe", "Naël", "Romane", "Victor", "Salomé", "Malo", "Fatou", "Axel"}
	lastNames = []string{"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
		"Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
		"Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez",
		"Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guerin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin",
		"Morin", "Mathieu", "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "Benali",
		"Diallo", "Nguyen", "Traoré", "Haddad", "Mendy", "Da Silva", "Ferreira", "Kone", "Cohen", "Bouvier", "Le Gall"}
	patrons = []string{"Jean Jaurès", "Victor Hugo", "Jules Ferry", "Louise Michel", "Jean Moulin", "Marie Curie",
		"Pierre Mendès France", "Simone Veil", "Albert Camus", "Paul Éluard", "Jacques Prévert", "Jean Macé",
		"Gustave Eiffel", "Condorcet", "Voltaire", "Rosa Parks", "Joséphine Baker", "Aimé Césaire", "Olympe de Gouges",
		"Lucie Aubrac", "Paul Langevin", "Jules Verne", "Molière", "George Sand", "Camille Claudel", "Romain Rolland",
		"Henri Wallon", "Pablo Picasso", "Jean Zay", "Gisèle Halimi", "Germaine Tillion", "Léon Blum", "Anatole France",
		"Les Tilleuls", "Le Parc", "La Fontaine", "Saint-Exupéry", "Émile Zola", "Denis Diderot", "Nelson Mandela"}
	streets = []string{"rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place de la Mairie",
		"rue de Paris", "boulevard Gambetta", "rue du Général de Gaulle", "rue Pasteur", "avenue de la Gare",
		"rue des Écoles", "chemin des Vignes", "rue de l'Église", "zone d'activité des Prés", "rue du Commerce",
		"allée des Tilleuls", "rue Nationale", "quai de la Marne", "route de Lyon", "impasse des Artisans", "rue Carnot"}
	rejections = []string{"Toutes nos places sont prises pour cette semaine.", "Nous avons retenu une autre candidature.",
		"Le tuteur prévu ne sera pas disponible.", "Le profil ne correspond pas à cette offre, bon courage pour la suite !"}
	motivations = []string{"J'aimerais découvrir ce métier que je ne connais que de loin.",
		"Je m'intéresse à ce secteur depuis longtemps et voudrais voir comment on y travaille.",
		"Je n'ai pas de contact dans ce domaine et votre offre est proche de chez moi.",
		"Je voudrais savoir si ce métier pourrait me plaire pour mon orientation.",
		"Un de mes professeurs m'a parlé de votre structure et j'aimerais beaucoup y faire mon stage.",
		"Je suis curieux, ponctuel et j'aime travailler en équipe."}
)

// hosting is what a sector's employers are called and who they are.
type hosting struct {
	weight int      // relative number of places in the sector
	kinds  string   // c: companies, p: public administrations, a: associations
	hosts  []string // what a host of the sector is called
	work   []string // what a pupil observes there
}

// sectors are the national sector codes with their share of offers on the
// platforms (commerce, health, food service and the public sector first).
var sectors = map[string]hosting{
	"s1":  {2, "c", []string{"Concession agricole", "Atelier de machinisme"}, []string{"entretien des tracteurs", "réglages", "diagnostic"}},
	"s2":  {3, "cp", []string{"Agence d'architecture", "Bureau d'études paysage"}, []string{"maquettes", "plans", "visite de chantier"}},
	"s3":  {2, "p", []string{"Régiment", "Base de défense"}, []string{"logistique", "transmissions", "vie de la caserne"}},
	"s4":  {2, "ca", []string{"Studio de design", "Atelier graphique"}, []string{"croquis", "prototypes", "rendez-vous client"}},
	"s5":  {2, "c", []string{"Atelier d'ébénisterie", "Atelier de céramique"}, []string{"façonnage", "finitions", "vente"}},
	"s6":  {3, "ca", []string{"Théâtre", "Compagnie de danse"}, []string{"répétitions", "régie son et lumière", "accueil du public"}},
	"s7":  {2, "c", []string{"Studio de production", "Société de post-production"}, []string{"tournage", "montage", "étalonnage"}},
	"s8":  {5, "c", []string{"Garage", "Carrosserie"}, []string{"vidange", "diagnostic électronique", "accueil client"}},
	"s9":  {4, "c", []string{"Agence bancaire", "Cabinet d'assurance"}, []string{"accueil", "conseil", "gestion des dossiers"}},
	"s10": {6, "c", []string{"Entreprise de maçonnerie", "Électricien", "Plombier chauffagiste"}, []string{"chantier", "métré", "sécurité"}},
	"s11": {3, "c", []string{"Salon de coiffure", "Institut de beauté"}, []string{"accueil", "soins", "hygiène"}},
	"s12": {10, "c", []string{"Boulangerie", "Supermarché", "Librairie-papeterie", "Boutique de vêtements", "Fleuriste"}, []string{"mise en rayon", "caisse", "vitrine", "conseil client"}},
	"s13": {3, "cp", []string{"Agence de communication", "Service communication"}, []string{"réseaux sociaux", "rédaction", "événementiel"}},
	"s14": {4, "cp", []string{"Cabinet comptable", "Service des ressources humaines"}, []string{"saisie", "paie", "recrutement"}},
	"s15": {2, "c", []string{"Cabinet de conseil"}, []string{"réunions client", "analyse", "présentations"}},
	"s16": {1, "c", []string{"Chantier naval", "Atelier ferroviaire"}, []string{"assemblage", "contrôle qualité", "soudure"}},
	"s17": {4, "pa", []string{"Musée", "Service du patrimoine", "Archives municipales"}, []string{"médiation", "inventaire", "restauration"}},
	"s18": {3, "cp", []string{"Cabinet d'avocats", "Tribunal judiciaire", "Étude notariale"}, []string{"audiences", "actes", "accueil du public"}},
	"s19": {3, "cp", []string{"Médiathèque", "Librairie", "Maison d'édition"}, []string{"catalogage", "conseil lecture", "animations"}},
	"s20": {1, "c", []string{"Atelier d'électronique"}, []string{"soudure de cartes", "tests", "réparation"}},
	"s21": {2, "c", []string{"Fournisseur d'énergie", "Installateur photovoltaïque"}, []string{"maintenance", "relevés", "chantier"}},
	"s22": {5, "pa", []string{"École élémentaire", "Centre de formation"}, []string{"préparation des cours", "accompagnement", "vie scolaire"}},
	"s23": {3, "pa", []string{"Syndicat des eaux", "Association de protection de la nature"}, []string{"analyses", "sensibilisation", "chantier nature"}},
	"s24": {1, "c", []string{"Scierie", "Menuiserie"}, []string{"débit du bois", "assemblage", "finitions"}},
	"s25": {8, "p", []string{"Mairie", "Conseil départemental", "Préfecture", "Centre des finances publiques"}, []string{"état civil", "accueil du public", "urbanisme", "services techniques"}},
	"s26": {8, "c", []string{"Restaurant", "Hôtel", "Brasserie"}, []string{"cuisine", "service en salle", "réception"}},
	"s27": {2, "c", []string{"Agence immobilière"}, []string{"visites", "estimation", "gestion locative"}},
	"s28": {2, "c", []string{"Fromagerie", "Conserverie", "Chocolaterie"}, []string{"production", "hygiène", "conditionnement"}},
	"s29": {1, "c", []string{"Laboratoire de chimie"}, []string{"analyses", "sécurité", "contrôle qualité"}},
	"s30": {3, "c", []string{"Usine de production", "Bureau d'études industriel"}, []string{"lignes de production", "maintenance", "méthodes"}},
	"s31": {4, "c", []string{"Entreprise de services numériques", "Start-up"}, []string{"développement", "réseaux", "support"}},
	"s32": {1, "c", []string{"Studio de jeu vidéo"}, []string{"game design", "tests", "graphisme"}},
	"s33": {1, "c", []string{"Rédaction de journal", "Radio locale"}, []string{"conférence de rédaction", "reportage", "montage"}},
	"s34": {4, "c", []string{"Entrepôt logistique", "Entreprise de transport"}, []string{"préparation de commandes", "planification", "quai"}},
	"s35": {2, "c", []string{"Entreprise de maintenance"}, []string{"interventions", "dépannage", "sécurité"}},
	"s36": {2, "c", []string{"Agence de publicité"}, []string{"création", "études", "campagnes"}},
	"s37": {2, "c", []string{"Atelier de mécanique", "Usinage de précision"}, []string{"tournage", "fraisage", "contrôle"}},
	"s38": {1, "c", []string{"Atelier de vitrail", "Bijouterie"}, []string{"création", "restauration", "vente"}},
	"s39": {1, "c", []string{"Atelier de couture", "Boutique de mode"}, []string{"patronage", "retouches", "vente"}},
	"s40": {1, "c", []string{"Cartonnerie"}, []string{"production", "contrôle", "expédition"}},
	"s41": {3, "cp", []string{"Cabinet de kinésithérapie", "Pharmacie", "Cabinet d'orthophonie"}, []string{"accueil des patients", "soins", "préparations"}},
	"s42": {1, "p", []string{"Laboratoire de recherche"}, []string{"expériences", "séminaire", "analyses"}},
	"s43": {7, "pc", []string{"Centre hospitalier", "EHPAD", "Clinique vétérinaire", "Maison de santé"}, []string{"soins", "accueil des patients", "hygiène", "pharmacie"}},
	"s44": {2, "pc", []string{"Caserne de pompiers", "Commissariat", "Société de sécurité"}, []string{"prévention", "interventions", "exercices"}},
	"s45": {2, "c", []string{"Bureau de poste", "Plateforme de tri"}, []string{"guichet", "tri du courrier", "distribution"}},
	"s46": {4, "ap", []string{"Centre social", "Association d'aide aux familles", "Maison de quartier"}, []string{"accueil", "soutien scolaire", "animations"}},
	"s47": {4, "ac", []string{"Club sportif", "Salle de sport", "Service des sports"}, []string{"entraînements", "arbitrage", "accueil"}},
	"s48": {2, "cp", []string{"Office de tourisme", "Camping", "Agence de voyages"}, []string{"accueil", "visites", "réservations"}},
	"s49": {1, "c", []string{"Agence de traduction"}, []string{"traduction", "relecture", "interprétariat"}},
	"s50": {1, "c", []string{"Verrerie", "Centrale à béton"}, []string{"production", "contrôle", "livraison"}},
	"s51": {3, "c", []string{"Exploitation agricole", "Élevage", "Maraîcher"}, []string{"soins aux animaux", "récolte", "vente directe"}},
}

// kindNames are the employer kinds of the contract.
var kindNames = [...]string{"company", "public", "association"}

// asciiFolding folds the letters of French names; built once, as a
// replacer costs far more to build than to use.
var asciiFolding = strings.NewReplacer("é", "e", "è", "e", "ê", "e", "ë", "e", "à", "a", "â", "a", "ï", "i", "î", "i", "ô", "o",
	"ö", "o", "ù", "u", "û", "u", "ç", "c", "É", "e", "Œ", "oe", "œ", "oe", " ", "-", "'", "")

// ascii folds a name into an e-mail address's local part.
func ascii(s string) string { return strings.ToLower(asciiFolding.Replace(s)) }

// luhnSIRET completes 13 digits into a 14-digit SIRET with a valid Luhn key.
func luhnSIRET(digits [13]byte) string {
	b := make([]byte, 14)
	sum := 0
	for i := 0; i < 13; i++ {
		b[i] = '0' + digits[i]
		d := int(digits[i])
		if i%2 == 0 { // positions that are doubled once the key digit is appended
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	b[13] = '0' + byte((10-sum%10)%10)
	return string(b)
}

// uai builds a UAI: the département on three digits, four digits, and the
// key letter of the national directory (the number modulo 23).
func uai(dept string, n int) string {
	d := dept
	switch dept {
	case "2A":
		d = "620"
	case "2B":
		d = "720"
	default:
		if len(d) == 2 {
			d = "0" + d
		}
	}
	num := fmt.Sprintf("%s%04d", d, n%10000)
	v := 0
	for _, c := range num {
		v = (v*10 + int(c-'0')) % 23
	}
	return num + string("ABCDEFGHJKLMNPRSTUVWXYZ"[v])
}
