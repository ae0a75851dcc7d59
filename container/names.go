package container

import (
	"math/rand/v2"
	"strconv"
)

// randomName makes docker-style names (adjective_scientist); retry > 0 appends a digit, as
// docker's namesgenerator does after a collision.
func randomName(retry int) string {
	n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
	if retry > 0 {
		n += strconv.Itoa(rand.IntN(10))
	}
	return n
}

var adjectives = []string{
	"admiring", "adoring", "agitated", "amazing", "angry", "awesome", "blissful", "bold",
	"boring", "brave", "busy", "charming", "clever", "compassionate", "competent", "confident",
	"cool", "cranky", "crazy", "dazzling", "determined", "distracted", "dreamy", "eager",
	"ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting", "fervent",
	"festive", "flamboyant", "focused", "friendly", "frosty", "funny", "gallant", "gifted",
	"goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful", "hungry",
	"infallible", "inspiring", "intelligent", "interesting", "jolly", "jovial", "keen", "kind",
	"laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty",
	"nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
	"pensive", "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed",
	"reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange",
	"stupefied", "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat",
	"vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful",
	"zealous", "zen",
}

var surnames = []string{
	"agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata",
	"austin", "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha",
	"black", "blackwell", "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain",
	"brown", "carson", "cerf", "chandrasekhar", "chaplygin", "chatelet", "chebyshev", "clarke",
	"cohen", "colden", "cori", "cray", "curie", "darwin", "davinci", "dijkstra", "dirac",
	"driscoll", "dubinsky", "easley", "edison", "einstein", "elion", "engelbart", "euclid",
	"euler", "faraday", "feistel", "fermat", "fermi", "feynman", "franklin", "galileo",
	"gates", "goldberg", "goldstine", "goldwasser", "golick", "goodall", "hamilton", "hawking",
	"heisenberg", "hermann", "hertz", "hodgkin", "hofstadter", "hoover", "hopper", "hugle",
	"hypatia", "jackson", "jang", "jennings", "jepsen", "johnson", "joliot", "jones", "kalam",
	"kapitsa", "kare", "keldysh", "keller", "kepler", "khorana", "kilby", "kirch", "knuth",
	"kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt", "lederberg", "lehmann",
	"lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "margulis", "matsumoto",
	"maxwell", "mayer", "mccarthy", "mcclintock", "mclean", "mcnulty", "meitner", "mendel",
	"mendeleev", "merkle", "mestorf", "mirzakhani", "moore", "morse", "murdock", "napier",
	"nash", "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce",
	"panini", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
	"ptolemy", "raman", "ramanujan", "ride", "ritchie", "robinson", "roentgen", "rosalind",
	"rubin", "saha", "sammet", "sanderson", "shannon", "shaw", "shirley", "shockley", "sinoussi",
	"snyder", "spence", "stallman", "stonebraker", "swanson", "swartz", "swirles", "tesla",
	"thompson", "torvalds", "turing", "varahamihira", "villani", "visvesvaraya", "volhard",
	"wescoff", "wiles", "williams", "wilson", "wing", "wozniak", "wright", "wu", "yalow",
	"yonath", "zhukovsky",
}
