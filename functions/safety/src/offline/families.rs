//! Pattern families of the offline screener for harm that carries no tell-tale keyword: dehumanising
//! comparisons aimed at a group (vermin, disease, animal metaphors), exclusion of a group, veiled threats,
//! encouragement of self-harm, harassment of the reader, sexual solicitation, incitement, and fraud pressure.
//!
//! Each family describes a construction rather than a phrase: a group noun joined to a metaphor by a copula
//! or a comparison, a harm outcome aimed at the reader or their family, an insult addressed to "you". The
//! words alone ("rats", "virus", "pest", "hurt") stay harmless in ordinary copy ("pest control", "flu virus
//! season"). The families were written against `examples/safety-dev.jsonl`, never against the held-out split
//! (docs/safety.md, "Held-out evaluation").

/// Groups as they appear in hateful text: plural nouns, singular nouns that are rarely anything else, and
/// group adjectives followed by a people noun. Possessives such as "women's" are masked before matching.
pub(super) const PEOPLE: &str = concat!(
    r"(?:(?:immigrants?|migrants?|refugees?|asylum[- ]seekers?|foreigners?|newcomers|outsiders|illegals|muslims?",
    r"|jews|jew|christians|catholics|hindus|sikhs|buddhists|atheists|blacks|whites|asians|africans|arabs|mexicans",
    r"|latinos|latinas|hispanics|indians|pakistanis|somalis|nigerians|romanians|albanians|bulgarians|poles",
    r"|syrians|afghans|iraqis|iranians|turks|kurds|jamaicans|ethiopians|eritreans|bangladeshis|filipinos",
    r"|gypsies|gypsy|roma|gays|lesbians|homosexuals|bisexuals|queers|women|woman|girls|cripples",
    r"|the disabled|the elderly|the chinese|the japanese|the vietnamese|the polish|the irish",
    r"|those people|these people|their kind|your kind|his kind",
    r"|(?:tourists|people|visitors|workers|families|men|women|immigrants|migrants|gangs|scroungers) from ",
    r"(?:eastern europe|africa|asia|the middle east|abroad|mexico|china|india|pakistan|romania|poland|somalia",
    r"|nigeria|syria|afghanistan|albania|bulgaria|the balkans|the caribbean|overseas))",
    r"|(?:black|white|brown|jewish|muslim|polish|chinese|indian|asian|african|mexican|arab|foreign|gay|lesbian",
    r"|trans|transgender|queer|disabled|immigrant|migrant|refugee|romanian|nigerian|pakistani|somali|roma|gypsy",
    r"|turkish|syrian|afghan|albanian|eastern european|non-white)",
    r" (?:people|persons|folk|folks|men|women|kids|children|families|family|workers|customers|shoppers|couples",
    r"|neighbours|neighbors|bankers|students|staff|tenants|immigrants|migrants|guys|girls|boys|gangs|youths|lads",
    r"|mobs|thugs))"
);

/// Metaphors that dehumanise only when a group is compared to them (a copula, "like", "a plague of").
pub(super) const METAPHOR: &str = concat!(
    r"(?:vermin|rats?|cockroach(?:es)?|roach(?:es)?|lice|louse|leech(?:es)?|parasit(?:e|es|ic)|locusts?|pests?",
    r"|termites?|maggots?|fleas|bacteria|germs|insects|flies|swarms?|infestation|plague|disease|virus|cancer",
    r"|tumou?rs?|contagion|sickness|mental illness|filth|savages?|animals|beasts|apes|monkeys|pigs|swine|dogs",
    r"|livestock|cattle|subhumans?|sub-humans?|garbage|trash|scum|freaks|snakes|hyenas|rabbits|weeds|a blight",
    r"|blight|a stain|a burden|dead weight|mouths to feed|breeding stock|untermenschen|mosquitoes|mosquitos|rot",
    r"|rotten|mould|mold|perversion|perverts|abomination|degenerates|bloodsuckers|blood-suckers|gorillas",
    r"|chimps|baboons|goats|property|objects|possessions|vultures|wolves|mongrels|rodents|mice|worms|slugs",
    r"|bedbugs|bed bugs|pathogens|disease-carriers|sewage|pollution|poison|toxic waste|excrement|dirt|brutes",
    r"|barbarians|primitives|cavemen|invaders|an invasion|a tide|a flood|a horde|hordes)"
);

/// Words allowed between a copula and a metaphor ("are nothing but filthy animals").
pub(super) const BRIDGE: &str = concat!(
    r"(?:(?:a|an|the|just|nothing but|no better than|more like|closer to|little more than|worse than|like|such",
    r"|total|human|dirty|filthy|disgusting|dangerous|defective|diseased|rabid|wild|stinking|useless|walking",
    r"|disease-ridden|dumb|mangy|breeding|literal|actual|pure|foreign|invasive|a pack of|a swarm of|a plague of",
    r"|bloodsucking|blood-sucking|greedy|lazy|thieving|vile|nasty|(?:a|an) (?:herd|pack|nest|cloud|swarm|plague",
    r"|bunch|horde|colony|tide|flood|infestation) of)\s+){0,3}"
);

/// Insults addressed to the reader.
pub(super) const INSULT: &str = concat!(
    r"(?:idiot|idiots|moron|morons|loser|losers|freak|freaks|hag|cow|pig|worm|troll|imbecile|cretin|fatso|fatty",
    r"|waste of space|waste of oxygen|waste of skin|failure|scum|slob|piece of (?:shit|trash|garbage|crap)",
    r"|degenerate|halfwit|dimwit|numpty|bimbo|lardass|waste of air|gremlin|goblin|clown|weirdo|creep|crybaby",
    r"|(?:snivelling|sniveling|whiny|whining|big|cry) baby|(?:little|dirty|greasy|filthy) (?:rat|dog|pig|worm|toad|weasel))"
);

/// Harm families: `(category, severity, pattern)` with the placeholders `PEOPLE`, `METAPHOR`, `BRIDGE`,
/// `INSULT` (and the base module's `GROUP`, `VICTIM`).
pub(super) const RULES: &[(&str, u8, &str)] = &[
    // ---- Dehumanising comparisons aimed at a group
    (
        "Hate",
        6,
        r"\bPEOPLE\b (?:[\w'-]+ ){0,4}?(?:are|is|r|were|become|becoming|like|as|act like|live like|breed like|behave like|multiply like|spread like|spreading like|turned into|no better than) BRIDGEMETAPHOR\b",
    ),
    ("Hate", 6, r"\b(?:like|as) (?:a |an )?(?:\w+ )?METAPHOR\b,? (?:\w+ ){0,3}?PEOPLE\b"),
    (
        "Hate",
        6,
        r"\b(?:plague|swarm|infestation|horde|hordes|pack|herd|nest|colony|flood|invasion|breeding ground) of (?:\w+ )?PEOPLE\b",
    ),
    (
        "Hate",
        6,
        r"\bPEOPLE\b (?:\w+ )?(?:breed|breeds|breeding|multiply|multiplies|swarm|swarms|infest|infests|crawl|crawled|crawling|spawn|spawned)\b",
    ),
    (
        "Hate",
        6,
        r"\b(?:PEOPLE|METAPHOR)\b[^.!?]{0,40}\b(?:infestation|infested|crawling with|exterminat\w*|cull(?:ed|ing)?|put down|sprayed|fumigat\w*|quarantined|caged|cages|cleaned out|cleansed|gassed)\b[^.!?]{0,40}\b(?:PEOPLE|METAPHOR)\b",
    ),
    (
        "Hate",
        6,
        r"\b(?:PEOPLE|METAPHOR) infestation\b|\binfestation of\b|\bcrawling with (?:\w+ )?(?:PEOPLE|vermin|rats|parasites)\b",
    ),
    (
        "Hate",
        6,
        r"\bhuman (?:parasites|vermin|garbage|trash|filth|scum|cockroaches|rats|waste|refuse|debris)\b|\b(?:subhumans?|sub-humans?|untermenschen)\b",
    ),
    (
        "Hate",
        6,
        r"\bPEOPLE\b[^.!?]{0,60}\b(?:should|must|need to|needs to|ought to|have to|has to|deserve to) be (?:put down|culled|sprayed|exterminated|fumigated|quarantined|caged|neutered|sterili[sz]ed|cleaned out|stamped out|drowned)\b",
    ),
    ("Hate", 6, r"\bPEOPLE belong in (?:cages|a cage|the zoo|zoos|the jungle|the gutter|the trees)\b"),
    // ---- Exclusion and hostility to a group without a metaphor
    (
        "Hate",
        4,
        r"\b(?:never|don't|do not|won't|will not|we don't|refuse to) (?:hire|employ|serve|trust|rent to|sell to|let in|admit|allow) (?:a |an |any )?PEOPLE\b",
    ),
    (
        "Hate",
        4,
        r"\bPEOPLE\b[^.!?]{0,20}\b(?:need not|needn't) (?:apply|shop|come|bother|enter)\b|\bPEOPLE\b[^.!?]{0,30}\b(?:are|is|will be|must|get) (?:\w+ ){0,2}?(?:not served|turned away|refused service|refused entry|not welcome|watched|followed|searched|thrown out|kicked out|banned)\b",
    ),
    (
        "Hate",
        4,
        r"\bPEOPLE\b[^.!?]{0,20}\b(?:must|have to|will have to|are required to) show (?:a |their |your )?(?:receipt|papers|passport|id)\b",
    ),
    (
        "Hate",
        4,
        r"\b(?:native[- ]born|real natives?|true natives?|natives|pure[- ]blood(?:ed)?|real \w+ born) (?:\w+ )?only\b|\bif your (?:name|accent|skin) (?:sounds|looks|is) (?:foreign|\w+ish|dark|black|brown)\b|\bforeigners? (?:will be|are) (?:turned away|refused|not served)\b",
    ),
    ("Hate", 4, r"\b(?:no|zero|without any) PEOPLE (?:\w+ )?(?:were|was|are) (?:used|employed|involved|hired)\b"),
    (
        "Hate",
        4,
        r"\bPEOPLE\b (?:\w+ )?(?:control|run|own|rule|secretly run|secretly control) (?:the |our |all the )?(?:banks|media|government|world|money|hollywood|press|courts)\b",
    ),
    (
        "Hate",
        4,
        r"\bPEOPLE\b (?:are|is) too (?:emotional|stupid|lazy|dirty|weak|dumb|primitive|hysterical) (?:for|to)\b|\bPEOPLE (?:belong|should stay|should be kept) (?:in|at) the (?:kitchen|home|back)\b|\bnever trust (?:a |an |any )?PEOPLE\b",
    ),
    // ---- Harassment of the reader
    (
        "Hate",
        4,
        r"\byou(?:'re| are| r)?,? (?:(?:a|an|such a|such an|the|just a|one|little|utter|complete|absolute|total|big|fat|ugly|stupid|pathetic|worthless|useless|disgusting|brain-dead|brainless|spineless|hideous|sad|miserable|old|dumb|lazy|smelly|gross|sweaty|snivelling|sniveling|whiny|greasy|stinking|dirty|ignorant|clueless)[ ,-]+){0,4}INSULT\b",
    ),
    ("Hate", 4, r"\b(?:hey|oi|listen|shut up|get lost),? (?:you )?(?:\w+[ ,-]+){0,2}?INSULT\b"),
    (
        "Hate",
        4,
        r"\b(?:nobody|no one|no-one) (?:likes|loves|wants|cares about|will ever like|will ever love|could ever love) you\b|\b(?:everyone|everybody|the whole \w+)\b[^.!?]{0,40}\b(?:laughs at you|laughing at you|hates you|thinks you(?:'re| are) (?:a |an )?(?:\w+ )?(?:joke|loser|idiot|freak|disgusting|ugly|pathetic|stupid|failure))",
    ),
    (
        "Hate",
        4,
        r"\b(?:ugly|fat|stupid|dumb|worthless|pathetic|disgusting|useless|smelly) (?:people|losers|freaks|ones) like you\b|\bpeople like you (?:should|shouldn't|don't deserve|are a|are the)\b",
    ),
    (
        "Hate",
        4,
        r"\byou(?:'re| are) (?:so|too) (?:stupid|dumb|ugly|fat|thick|pathetic|worthless|hideous|disgusting)\b|\byour (?:disgusting|ugly|hideous|fat|repulsive|gross|pathetic) (?:face|body|self|voice|mug|existence)\b|\bwhat an? (?:disgusting|ugly|hideous|repulsive|pathetic) (?:face|body|person|excuse)\b",
    ),
    (
        "Hate",
        4,
        r"\byou(?:'re| are) (?:a |such a |just a |a total |a complete )?joke\b|\blaugh(?:s|ing|ed)? at you\b|\bfor (?:a )?laughs\b[^.!?]{0,20}\byour\b|\byour (?:complaint|photo|picture|email)\b[^.!?]{0,30}\bfor (?:a )?laughs\b|\bsharing your (?:complaint|photo|picture|email)s? for\b",
    ),
    // ---- Veiled threats
    (
        "Violence",
        4,
        r"\b(?:shame|pity|sad|terrible|awful|tragic|unfortunate|a waste)\b[^.!?]{0,30}\bif\b[^.!?]{0,80}\b(?:happen(?:ed|s)?|hurt|injured|accident|caught fire|catch fire|burn(?:ed|t|s)? down|fail(?:ed|s)?|went missing|go missing|broke|broken|disappeared)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:we|i) know (?:where|which school|what school|what time|when|which bus|what car) (?:you|your \w+(?: \w+)?)\b|\b(?:we|i) know your (?:home )?(?:address|routine|(?:wife|husband|kids|children|daughter|son|family)(?:'s|s')? (?:name|names|school|address))\b|\b(?:we|i) know where your\b",
    ),
    ("Violence", 4, r"\b(?:we|i)(?:'ve| have)? been (?:watching|following|tracking|outside) (?:you|your)\b"),
    (
        "Violence",
        4,
        r"\b(?:not|never|won't|wouldn't|will not|would not) (?:make it home|walk again|live to see|(?:\w+ )?see (?:the new year|christmas|another birthday|tomorrow|next week|your next birthday|the weekend))\b|\b(?:make sure|ensure) you (?:never|can't|won't) (?:walk|work|see|talk|speak|drive|sleep) again\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:end up|wind up) (?:in (?:hospital|a hospital|a ditch|the river|a wheelchair|the ground|a coffin|a body bag|intensive care)|dead|hurt|missing)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:tend to|might|may|could|would|will|usually|often|always) (?:get|be) (?:hurt|injured|beaten)\b|\b(?:might|may|could|would) have an accident\b|\bif (?:your|you)\b[^.!?]{0,30}\b(?:got|get|gets) (?:hurt|injured)\b|\baccidents (?:happen|can happen|tend to happen) to\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:people|customers|those|anyone|folks|users|members|clients)\b[^.!?]{0,10}\bwho\b[^.!?]{0,40}\b(?:tend to|usually|always|often|have a way of|end up|soon)\b[^.!?]{0,10}\b(?:disappear\w*|vanish\w*|go(?:ing)? missing|get(?:ting)? hurt|regret\w*|having accidents)\b|\bfind out what happens to (?:people|those|anyone|customers|folks) who\b",
    ),
    (
        "Violence",
        4,
        r"\bwatch your back\b|\blook(?:ing)? over your shoulder\b[^.!?]{0,30}\b(?:from now|for the rest)\b|\byou(?:'ve| have) been warned\b",
    ),
    (
        "Violence",
        4,
        r"\bnext time\b[^.!?]{0,30}\bwon't (?:just )?(?:be )?\b|\b(?:break|smash|slash|cut|torch|brick)\w* (?:your |the |their )?(?:windows?|tyres|tires|brakes|brake lines?|car|front door|shop front|fingers|kneecaps)\b|\b(?:windows?|tyres|tires|brakes|brake lines?) (?:\w+ ){0,3}(?:break|smash|slash|cut)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:check|look) under (?:my|your|the) car\b|\b(?:house|home|shop|store|car|flat|office|business) (?:is|looks|seems) (?:very |really |quite |so |awfully )?(?:flammable|easy to burn|easy to break into)\b|\b(?:brakes|brake lines?) (?:failed|fail|could fail|were cut)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:your|their) (?:kids|children|daughter|son|wife|husband|family|little \w+)\b[^.!?]{0,30}\b(?:alone|by themselves|by herself|by himself)\b[^.!?]{0,20}\?|\b(?:your|their) (?:kids|children|daughter|son|wife|husband|family)\b[^.!?]{0,30}\b(?:might|may|could|would) (?:have an accident|get hurt|go missing|disappear)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:we|i)(?:'d| would) hate for (?:anything|something) (?:bad )?to happen to\b|\bit would be (?:a shame|a pity|sad|terrible) if something happened\b|\bsomething (?:bad )?(?:might|could|may) happen to (?:you|your)\b",
    ),
    // ---- Encouraging self-harm
    (
        "SelfHarm",
        6,
        r"\b(?:nobody|no one|no-one) (?:would|will|is going to|'d|ever) (?:notice|miss you|care|cry|mourn)\b[^.!?]{0,30}\bif you\b|\b(?:nobody|no one|no-one) (?:will|would) (?:ever )?miss you\b|\bnobody wants you (?:here|around|alive)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:better off|happier|a better place) without (?:you|people like you)\b|\b(?:better off|happier) if you (?:were|was) (?:gone|dead|never born)\b|\bif you (?:died|disappeared|were gone|was gone|never woke up)\b[^.!?]{0,30}\b(?:better|happier|favou?r|relief|nobody|no one)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:you|just|please|if you)\b[^.!?]{0,20}\b(?:disappear|were gone|was gone|vanish|vanished|go away) (?:for good|forever|permanently)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\bdo(?:ing)? (?:everyone|everybody|the world|us all|your family) a favou?r\b[^.!?]{0,40}\b(?:disappear|die|end it|never woke up|never wake up|jump|kill|go away|vanish|gone)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:swallow|take|down|neck|empty)\b (?:the whole|every|all (?:the|your|of the|of your)|a whole)\b[^.!?]{0,20}\b(?:pills?|tablets|bottle|cabinet|painkillers|paracetamol|sleeping pills)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:drink|swallow|chug|down|inject)\b (?:some |a bottle of |a glass of |the )?(?:bleach|antifreeze|poison|drain cleaner|weedkiller|weed killer|rat poison)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:pills?|bottle|bleach|antifreeze|poison|overdose|rope|noose)\b[^.!?]{0,40}\b(?:sleep forever|never wake up|the pain goes away|make it stop)\b|\bif you never (?:woke|wake) up\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:take|put|hold|press|run|drag)\b[^.!?]{0,10}\b(?:a |the |your )?(?:razor|blade|knife|lighter|cigarette)s?\b[^.!?]{0,25}\b(?:to|against|on|across|into) (?:your|my) (?:arms?|wrists?|skin|thighs?|legs?|stomach)\b|\b(?:burn|cut|carve|scratch|slice|slash) (?:yourself|your (?:arms?|wrists?|thighs?|skin))\b",
    ),
    ("SelfHarm", 6, r"\bnoose\b|\b(?:rope|cord|belt)\b[^.!?]{0,40}\b(?:beam|banister|your neck|ceiling|hang)\b"),
    (
        "SelfHarm",
        6,
        r"\b(?:under|below|less than|only|just|max|maximum|no more than|stay under|eat|eating) (?:\w+ )?[1-7]\d{2} (?:k?cals?|calories)\b|\b(?:eat|eating) nothing but (?:ice|ice cubes|water|air|coffee|gum|lettuce)\b|\b(?:throw up|vomit|purge|be sick) after (?:every|each|a|your) (?:meal|bite|snack)\b|\bmake yourself (?:throw up|sick|vomit)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\byou deserve (?:the |this |all the )?pain\b|\byou deserve to (?:suffer|hurt|bleed)\b|\b(?:just )?end it already\b|\bend it (?:now|tonight)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\bgo (?:and )?(?:jump off|hang yourself|die)\b|\b(?:without|than) (?:you|people like you)\b[^.!?]{0,10}\. go jump\b",
    ),
    // ---- Sexual solicitation
    (
        "Sexual",
        4,
        r"\b(?:lonely|bored|naughty|horny|married|desperate|local|hot|mature|single|busty|frisky)\s+(?:\w+\s+)?(?:housewives|wives|milfs?|ladies|girls|women|singles|moms|mums|cougars|babes)\b[^.!?]{0,40}\b(?:near you|in your (?:area|postcode|town|city|street)|nearby|tonight|want|waiting|ready|looking|chat|meet)\b",
    ),
    (
        "Sexual",
        4,
        r"\bdiscreet (?:affairs?|encounters?|hook ?ups?|fun|meetings?|flings?)\b|\b(?:affair|hook ?up|fling) partners?\b|\bget frisky\b|\bfrisky (?:singles|fun|chat|ladies|girls)\b",
    ),
    (
        "Sexual",
        4,
        r"\b(?:with nothing on|nothing but a smile|no clothes (?:required|on|needed)|without (?:any |her |their )?clothes)\b|\b(?:chat|meet|play|strip|live)\b[^.!?]{0,15}\bon (?:cam|webcam)\b|\bwebcam (?:girls|babes|ladies|models|shows?)\b|\bcam girls\b|\bshe(?:'s| is| will|'ll) (?:waiting for you|show you everything|undress)",
    ),
    // ---- Incitement and glorification
    (
        "Violence",
        6,
        r"\b(?:someone|somebody|anyone|one of you|who) (?:should|needs to|need to|has to|ought to|will|is going to|'s going to|gonna) (?:shoot|kill|stab|hang|hurt|run over|knife|silence|bomb|torch|put a bullet)\b|\bput (?:a bullet|bullets) (?:in|through)\b|\bput (?:him|her|them|that \w+|the \w+) in the ground\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:run|mow) (?:them|him|her|those \w+|the \w+|protesters|cyclists|pedestrians) (?:over|down)\b|\b(?:deserve to be|should be|must be|ought to be) (?:run over|run down|hit by a (?:car|bus|truck|lorry)|mowed down|beaten|punched|lynched|hanged|strung up|stabbed)\b|\baim for (?:them|him|her|the \w+)\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:bring|grab|take|carry|pack|get)\b[^.!?]{0,15}\b(?:bats?|baseball bats|knives|knife|guns?|weapons?|machetes?|crowbars?|bricks|acid|hammers?)\b[^.!?]{0,30}\b(?:to the (?:protest|rally|march|match|meeting|mosque|synagogue|church|school|camp)|teach|make them|make him|make her|show them|hit them|hurt them|smash|attack)\b",
    ),
    (
        "Violence",
        6,
        r"\bmake (?:them|him|her|those \w+) bleed\b|\bteach (?:them|him|her|those \w+) a lesson (?:they|he|she)(?:'ll| will)? (?:never|not|won't) forget\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:shooter|gunman|gunmen|bomber|attacker|killer|terrorist|mass murderer)\b[^.!?]{0,50}\b(?:hero|heroes|legend|martyr|saint|icon|inspiration|finish (?:his|their|the) work|who(?:'s| is) (?:going to be )?next)\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:stabbed|shot|killed|bombed|murdered|attacked|ran over)\b[^.!?]{0,40}\bdid (?:what we were all thinking|the right thing|us (?:all )?a favou?r|what had to be done|nothing wrong)\b|\bacid (?:in|on|at|into) (?:her|his|their|your|its) (?:face|eyes)\b|\bacid attack\b|\bthrow acid\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:go|head|march|walk) (?:down |over |up )?to the (?:mosque|synagogue|church|temple|gurdwara|camp|hostel|refugee centre|refugee center|asylum hotel)\b[^.!?]{0,60}\b(?:show them|teach them|fists|burn|smash|sort them out|make them pay)\b|\bshow them\b[^.!?]{0,30}\bwith (?:our|your|my) fists\b",
    ),
    // ---- More dehumanising constructions
    (
        "Hate",
        6,
        r"\b(?:foreign|immigrant|migrant|muslim|jewish|black|gay|trans|refugee|gypsy|roma|asian|african|arab|mexican|polish|romanian|pakistani|somali|nigerian|syrian|afghan)\s+(?:vermin|rats|scum|parasites|cockroaches|filth|savages|animals|trash|garbage|leeches|lice|locusts|maggots|pests|invaders|hordes|swarms)\b",
    ),
    (
        "Hate",
        6,
        r"\bPEOPLE\b[^.!?]{0,40}\b(?:closer to|more like|descended from|related to) (?:\w+ )?METAPHOR\b[^.!?]{0,20}\bthan (?:to )?(?:humans|people|human beings)\b|\bPEOPLE\b[^.!?]{0,30}\b(?:less than|not even|barely|hardly) human\b",
    ),
    // ---- More exclusion
    (
        "Hate",
        4,
        r"\bPEOPLE\b[^.!?]{0,20}\b(?:will be|are|get) asked to leave\b|\bno PEOPLE\b,? (?:and )?no \w+|\bPEOPLE\b (?:\w+ )?(?:control|run|own|rule) (?:the |our |all the |every |all our )?(?:newspapers?|tv|television|politicians|economy|everything|publishers|universities|schools)\b",
    ),
    // ---- More veiled threats
    (
        "Violence",
        4,
        r"\bor (?:we|i)(?:'ll| will| are going to|'re going to|'m going to| am going to)\b[^.!?]{0,40}\b(?:visit|pay (?:you|your \w+) a (?:little )?visit|paying (?:you|your \w+) a (?:little )?visit|come (?:round|around|for you|after you)|find you|send (?:someone|the boys|some friends|our friends))\b",
    ),
    (
        "Violence",
        4,
        r"\bsee what happens to (?:your|you)\b|\bsafety (?:depends|relies|hinges) on (?:you|your)\b|\bkeep your (?:kids|children|family|wife|husband|daughter|son) (?:indoors|inside|at home|close)\b[^.!?]{0,30}\bif i were you\b|\b(?:brick|stone|rock|bullet|bottle) through (?:the|your) (?:window|windscreen|windshield|front door)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:people|customers|those|anyone|folks|users|members|clients)\b[^.!?]{0,10}\bwho\b[^.!?]{0,40}\b(?:always|tend to|seem to|always seem to|have a way of)\b[^.!?]{0,10}\b(?:have (?:bad luck|accidents|problems)|run into (?:trouble|problems))\b",
    ),
    // ---- More self-harm encouragement
    (
        "SelfHarm",
        6,
        r"\b(?:give up on|quit) (?:life|living)\b|\bjust stop (?:breathing|existing|living)\b|\bcut (?:yourself )?deeper\b[^.!?]{0,20}\b(?:next time|this time|tonight|you)\b|\b(?:fast|fasting|starve|starving|eat nothing|no food) for (?:\w+ )?(?:days|a week|weeks|\d+ days)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\bbetter off\b[^.!?]{0,30}\byou (?:in the ground|dead|gone|six feet under|in a coffin)\b|\b(?:train tracks|railway line|bridge|ledge|roof|rope|pills|cliff edge)\b[^.!?]{0,40}\b(?:right there|(?:nobody|no one) would (?:blame|stop|notice))\b",
    ),
    // ---- More harassment
    (
        "Hate",
        4,
        r"\b(?:a |an )?(?:\w+ )?INSULT like you\b|\b(?:garbage|trash|rubbish|pathetic|worthless|a joke|useless),? (?:just )?like you\b|\b(?:everyone|everybody)\b[^.!?]{0,40}\bcalls? you (?:a |an |the )?(?:\w+ ){0,2}?(?:INSULT|smelly|fat|ugly|stupid|weird|creepy|old man|old woman)\b",
    ),
    // ---- Round 3 (dev batch 3): eating-disorder coaching, methods, relief at the reader's death
    (
        "SelfHarm",
        6,
        r"\bstop(?:ped|ping)? eating (?:altogether|completely|entirely|for good|for days)\b|\bif you (?:get|feel) (?:dizzy|faint|lightheaded|light-headed)\b[^.!?]{0,40}\b(?:fat|working|winning|good sign|progress|weakness)\b|\b[1-7]\d{2}[- ]?(?:k?cals?|calories?)(?: limit)? (?:a|per) day\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:would be|'d be|is|are) better without you\b|\b(?:relieved|happier|better off|glad|celebrate)\b[^.!?]{0,20}\bif you (?:were|was) gone\b|\b(?:climb|go) to the top of\b[^.!?]{0,30}\b(?:let go|jump|step off)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:slice|cut|carve|chop) (?:away|off)\b[^.!?]{0,30}\b(?:your body|your skin|the fat|parts of your body|your flesh)\b|\bpills are\b.{0,30}\btake them all\b|\b(?:step|walk|jump|throw yourself) (?:out )?in front of (?:a|the|the next) (?:bus|train|lorry|truck|car|tube)\b|\bthrow yourself (?:under|off)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:car|engine) running in (?:the|a|your) (?:closed |shut )?garage\b|\b(?:let yourself|just) (?:fade|slip|waste) away\b",
    ),
    (
        "SelfHarm",
        4,
        r"\byou(?:'re| are) (?:a|such a|just a) burden (?:on|to) (?:everyone|everybody|your family|us|the world)\b|\bcarbon monoxide\b",
    ),
    // ---- Round 3: comparisons, threats, insults
    (
        "Hate",
        6,
        r"\b(?:worse|dirtier|lower|filthier) than (?:\w+ )?METAPHOR\b[^.!?]{0,30}\bPEOPLE\b|\bPEOPLE\b[^.!?]{0,20}\b(?:worse|dirtier|lower|filthier) than (?:\w+ )?METAPHOR\b",
    ),
    (
        "Violence",
        4,
        r"\bremember what happened to (?:the last|that|the other) \w+ (?:that|who) (?:crossed|complained|refused|didn't pay|reported|talked)\b|\b(?:awful|shame|pity|terrible|sad|tragic)\b[^.!?]{0,30}\bif\b[^.!?]{0,60}\b(?:didn't|did not|never|doesn't|does not) (?:come|make it|get) home\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:we'll|we will|we're|we are|i'll|i will) be waiting (?:outside|for you outside|for you at|at) your (?:work|house|home|office|school|door|flat|gym)\b|\bthink (?:of|about) your (?:children|kids|family|wife|husband|daughter|son) before you\b|\blook(?:ing)? over your shoulder (?:for a long time|for the rest of your life|from now on|forever|every day|for years)\b",
    ),
    (
        "Hate",
        4,
        r"\b(?:an embarrassment|a disgrace|a disappointment) to your (?:family|parents|mother|father|mum|dad|kids)\b|\bas (?:ugly|stupid|fat|dumb|pathetic|worthless|disgusting)(?: and (?:ugly|stupid|fat|dumb|pathetic|worthless|disgusting))? as you\b|\byour face (?:could|would|is enough to) (?:scare|frighten|stop|break|curdle)\b|, (?:you )?(?:loser|idiot|moron|freak|imbecile|fatso|halfwit|cretin|numpty)\s*[.!?]",
    ),
    (
        "Hate",
        4,
        r"\b(?:even )?your (?:own )?(?:mother|mum|mom|father|dad|family|wife|husband|friends|kids)\b[^.!?]{0,20}\b(?:thinks?|knows?|says?) you(?:'re| are) (?:a |an )?(?:\w+ )?(?:pathetic|worthless|useless|a failure|disgusting|ugly|stupid|a loser|a joke|an idiot)\b",
    ),
    (
        "Sexual",
        4,
        r"\b(?:her|his|their) clothes (?:are|come|coming) off\b|\b(?:takes?|taking) (?:her|his|their) clothes off\b",
    ),
    (
        "Violence",
        6,
        r"\bgive (?:them|him|her|those \w+) a (?:beating|kicking|hiding|good hiding|slap)\b|\bdeserves? (?:a bullet|to be shot|a beating|a kicking)\b|\bmake (?:him|her|them) pay\b",
    ),
    // ---- More solicitation
    (
        "Sexual",
        4,
        r"\bwithout (?:her|his|their|any) (?:bikini|clothes|underwear|bra|knickers|panties|top|swimsuit)\b|\b(?:sexy|hot|naughty|horny|lonely|frisky) singles\b",
    ),
];

/// Masked before matching: group possessives used as product ranges, and ordinary uses of pest and disease
/// words ("pest control", "rat-proof bins", "flea treatment").
pub(super) const IDIOMS: &[&str] = &[
    r"\b(?:wo)?men's\b|\b(?:girls|boys|ladies|kids)'",
    r"\b(?:pest|rat|rats|vermin|flea|fleas|mouse|mice|cockroach|insect|bug|wasp|moth|weed|parasite|worm|tick|lice|nit)[- ]?(?:control|traps?|treatments?|spray|repellents?|bait|killers?|-?proof|protection|stations?|combs?|shampoo|range|deterrents?|problems? (?:in|at) your)\b",
    r"\bburn(?:s|ing)? (?:up to |over |around |about )?\d+ (?:k?cals?|calories)\b",
    r"\bpig(?:s|ging)? out\b|\bdog[- ](?:walking|friendly|beds?|owners?|lovers?|treats?)\b",
];

/// Fraud pressure, reported as provider-side blocklist hits (`offline-fraud:<cue>`): no harm category fits.
/// A strong cue alone flags a text; weak cues flag it only when two different ones appear.
pub(super) const FRAUD: &[(&str, bool, &str)] = &[
    (
        "credential-request",
        true,
        r"\b(?:send|give|tell|reply with|email|text|share|enter|confirm|verify|provide|read out)\b(?: us| me)?(?: with)?(?: your)? (?:\w+ ){0,3}?(?:pin|pins|password|passcode|security code|cvv|cvc|card number|bank details|login details|one[- ]time (?:pass)?code|sort code|account number|online banking details)\b",
    ),
    (
        "untraceable-payment",
        true,
        r"\b(?:tax|taxes|fine|fines|fee|fees|debt|bill|arrears|release|customs|bail|deposit|penalty)\b[^.!?]{0,50}\b(?:gift cards?|itunes|google play|steam cards?|vouchers|western union|moneygram|bitcoin|crypto)\b|\b(?:pay|settle)\b[^.!?]{0,20}\b(?:itunes|google play|steam cards?|amazon gift cards?|western union|moneygram)\b",
    ),
    (
        "wire-transfer",
        true,
        r"\b(?:wire|western union|moneygram)\b[^.!?]{0,40}\b(?:deposit|fee|money|dollars|pounds|euros|funds|\d)",
    ),
    (
        "guaranteed-returns",
        true,
        r"\b\d+x returns\b|\b\d+% (?:daily|weekly|monthly) (?:returns|profits?)\b|\bguaranteed \d+% (?:\w+ )?(?:profits?|returns?)\b|\bguaranteed (?:returns|profits?|income|winnings|gains)\b|\b(?:double|triple|quadruple|10x) your (?:money|bitcoin|crypto|savings|investment|cash|deposit)\b|\bturn [£$€]?\d[\d,.]* (?:\w+ )?into [£$€]?\d|\b(?:zero|no)[- ]risk\b[^.!?]{0,40}\binvest|\binvest\w*\b[^.!?]{0,40}\b(?:zero|no)[- ]risk\b|\b(?:invest|deposit)\b[^.!?]{0,40}\b(?:earn|make|get back|receive)\b[^.!?]{0,20}\d[\d,]*\b[^.!?]{0,20}\b(?:by|in|within) (?:next|a|\d)",
    ),
    (
        "secrecy",
        true,
        r"\b(?:don't|do not|never) tell (?:your|anyone|the) ?(?:bank|family|police|anyone|partner)?\b[^.!?]{0,30}\b(?:transfer|payment|money|winnings|this)\b|\bkeep (?:this|it|the) (?:\w+ )?(?:secret|quiet|between us|confidential) from\b|\bsecret from your (?:bank|family|partner)\b",
    ),
    (
        "advance-fee",
        true,
        r"\b(?:inheritance|unclaimed (?:funds|estate)|next of kin|beneficiary)\b[^.!?]{0,60}\b(?:million|transfer|fee|wire|claim|secure)\b|\b(?:prince|diplomat|barrister|bank manager)\b[^.!?]{0,60}\b(?:million|transfer|funds)\b|\b(?:processing|release|handling|clearance|customs|admin|activation) fee\b[^.!?]{0,40}\b(?:claim|collect|release|receive|prize|winnings|parcel|package|refund)\b|\b(?:claim|collect|release|receive)\b[^.!?]{0,40}\b(?:processing|release|handling|clearance|admin|activation) fee\b",
    ),
    (
        "money-to-account",
        true,
        r"\b(?:send|transfer|wire|pay)\b (?:me |us )?[£$€]?\d[\d,.]*(?: \w+)? (?:to|into) (?:this|my|our|the following|a new|a safe) (?:account|number|wallet|address)\b",
    ),
    (
        "remote-access",
        true,
        r"\b(?:give|grant|allow) (?:us|them|our \w+|the \w+) remote access\b|\binstall (?:anydesk|teamviewer)\b",
    ),
    ("arrest-threat", true, r"\b(?:arrest warrant|face arrest|be arrested|arrest you|police will)\b"),
    (
        "prize",
        false,
        r"\b(?:you(?:'ve| have) (?:just )?won (?:a|an|the|our) (?:\w+ ){0,2}(?:iphone|ipad|prize|car|holiday|lottery|jackpot|cash|gift card)|lottery|jackpot|winnings|you were (?:chosen|selected)|only you (?:were|have been) (?:chosen|selected))\b",
    ),
    ("fee-demand", false, r"\b(?:pay|send|transfer)\b[^.!?]{0,30}\b(?:fee|charge|deposit|tax|duty)\b"),
    (
        "account-threat",
        false,
        r"\baccount (?:has been |is |will be |was )?(?:suspended|locked|frozen|closed|deleted|disabled|compromised|restricted)\b|\b(?:unusual|suspicious) (?:activity|login|sign-in)\b|\bparcel (?:is )?(?:on hold|held|awaiting payment)\b|\bfrozen (?:rewards|funds|account)\b|\b(?:licence|license|account|subscription|service) will be (?:revoked|suspended|cancelled|canceled|closed|deleted|terminated)\b|\bto avoid (?:suspension|closure|cancellation|legal action|arrest)\b",
    ),
    (
        "deadline-threat",
        false,
        r"\bwithin \d+ (?:hours|hrs|minutes)\b|\bor (?:lose|forfeit) (?:your|it|them|access)\b|\bor your account will\b|\bfinal (?:warning|notice)\b",
    ),
    (
        "payment-pressure",
        false,
        r"\bunpaid (?:toll|fine|tax|invoice|bill|parking)\b|\b(?:update|re-?enter|re-?confirm) your (?:card|payment|bank|billing) details\b|\bsettle\b[^.!?]{0,20}\b(?:voucher|gift card)",
    ),
    (
        "job-lure",
        false,
        r"\bearn [£$€]?\d[\d,.]*\+? (?:a|per|every) (?:day|week|month)\b|\b(?:work|working) from home\b|\bno experience (?:needed|required)\b|\bstarter (?:fee|kit fee)\b",
    ),
    (
        "device-alarm",
        false,
        r"\byour (?:computer|pc|laptop|device|phone|mac) (?:has|is infected with|has been infected with) (?:a )?(?:virus|malware|trojan)\b|\bcall our (?:technician|support team) now\b",
    ),
    (
        "family-emergency",
        false,
        r"\b(?:stuck abroad|lost my (?:wallet|phone|purse)|new number,? (?:mum|dad)|hi (?:mum|dad),? (?:it's|this is) me)\b|\burgently\b",
    ),
    ("presale", false, r"\b(?:presale|pre-sale|token sale|before the listing|ico)\b"),
    (
        "reply-channel",
        false,
        r"\b(?:by replying|reply to this (?:email|message|text)|at the link|click the link|follow the link)\b",
    ),
];
