//! The `offline` screener: category lexicons and patterns giving severities on Azure's 0/2/4/6 scale,
//! written for marketing copy. Marketing idioms ("killer deal", "to die for", "crushing it", "shoot us a
//! message", "pest control") are masked before matching, and harm words score high only in harmful
//! constructions (a threat with a person as object, a self-directed act, a group compared to vermin or
//! disease, an insult addressed to the reader), so ordinary copy passes while real harm is blocked. Fraud
//! pressure (credential requests, gift-card payments, guaranteed returns) is reported as provider-side
//! blocklist hits, since no harm category covers it. No network, deterministic; the default provider.
//!
//! Hand-written on purpose: no maintained crate offers harm lexicons with Azure-compatible severities, and
//! the default provider must work with no network and no model download. Text is screened twice — as
//! written (after undoing l33t spellings) and after `decancer` has mapped homoglyphs, zero-width and other
//! confusable characters to plain letters — and the worse reading counts, so disguises cannot lower a score.
//! Slurs are deliberately not listed verbatim here; production runs should chain `azure-content-safety`.
//! How the families were measured: docs/safety.md ("Held-out evaluation").

mod families;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use cpo_common::model::safety::CATEGORIES;
use regex::Regex;

use crate::screener::{Scores, ScreenError, Screener};

/// Version of the lexicon, recorded as the provider's model in the audit trail.
pub const LEXICON_VERSION: &str = "lexicon-2026.12";

/// Groups protected from hate speech, as they appear in text.
const GROUP: &str = r"(?:immigrants?|migrants?|refugees?|foreigners?|muslims?|jews|jewish people|christians?|hindus?|sikhs?|buddhists?|atheists?|catholics?|blacks|black people|whites|white people|asians?|africans?|arabs?|mexicans?|latinos?|latinas?|hispanics?|chinese people|the chinese|indians|gypsies|roma people|gays|gay people|lesbians?|homosexuals?|bisexuals?|trans people|transgender people|queers?|women|men|girls|disabled people|the disabled|cripples?|old people|the elderly|poor people|fat people|foreign people)";

/// Who a violent act is done to, in the weapon co-occurrence rules ("knife … hurt your budget" is fine).
const VICTIM: &str = r"(?:you|him|her|them|us|people|someone|somebody|anyone|everyone|everybody|(?:the|a|any) (?:first |next )?(?:person|man|woman|kid|child|stranger|neighbou?r|people|customers?|staff)s?)";

/// Idioms masked before matching: harmless in marketing copy although they contain harm words.
const IDIOMS: &[&str] = &[
    r"\bkiller (?:deals?|prices?|looks?|styles?|apps?|features?|combos?|offers?|value|ranges?|collections?|bundles?|sales?|savings|discounts?|heels|boots|views?|recipes?|playlists?|lineups?|line-ups?)\b",
    r"\b(?:to|2)[- ]die[- ]for\b",
    r"\b(?:crushing|killing|slaying|nailing|smashing) it\b",
    r"\bshoot (?:us|me|them|her|him) (?:a|an|your) (?:message|email|e-mail|note|line|text|dm|question|quick note|photo)\b",
    r"\bshoot (?:your|a) shot\b",
    r"\bdrop[- ]dead (?:gorgeous|good|stunning|simple)\b",
    r"\bdressed to kill\b",
    r"\bkill(?:ing)? (?:time|the lights|the competition|it)\b",
    r"\b(?:dying|die) to (?:try|see|show|know|hear|meet|get|share|tell)\b",
    r"\bcould (?:just )?die (?:for|of|happy)\b",
    r"\bcut (?:yourself|myself) (?:a|an|some) (?:slice|piece|break|deal|wedge)\b",
    r"\b(?:beat|beats|beating|fight|fights|fighting|battle|battling|attack|attacking|tackle|kick|kicking|crush|crushing) (?:the |those |your |that |off )?(?:cold|winter|chill|rush|crowds?|queues?|heat|frizz|clutter|boredom|blues|monday|mondays|stress|odds|clock|prices?|competition|workout|goals?|cravings?|dryness|winter blues|january blues|sniffles)\b",
    r"\b(?:bath|flavou?r|photo|glitter|confetti|calorie) ?bombs?\b",
    r"\bthe bomb\b",
    r"\bblood (?:orange|oranges|moon|type|donors?|donation|drive|pressure|sugar)\b",
    r"\b(?:photo|video) ?shoots?\b",
    r"\bshot (?:glass|glasses)\b|\b(?:give it|worth) a shot\b|\bflu shots?\b|\bespresso shots?\b",
    r"\bdeath by chocolate\b",
    r"\bdead(?:ly)? (?:simple|easy|serious|good|comfy|quiet)\b",
    r"\bdeadlines?\b",
    r"\bfire sale\b|\bon fire\b|\bfire away\b",
    r"\bknock(?:ed|s)? (?:it |them |'?em )?out of the park\b|\bknock-?outs?\b",
    r"\bblow(?:s|ing|n)? (?:you|them|your mind|minds) away\b|\bmind-?blowing\b",
    r"\bsteal (?:of a deal|the show|the spotlight|the look)\b|\bit'?s a steal\b",
    r"\bslash(?:ed|es|ing)? (?:prices?|costs?|fees)\b|\bprices? slashed\b",
    r"\bshop till you drop\b|\bshop 'til you drop\b",
    r"\bpain[- ]free\b|\bno pain,? no gain\b",
    r"\bsmash(?:ing)? (?:hit|success|your goals)\b",
    r"\bbreak the internet\b",
    r"\bexplosive (?:growth|flavou?rs?|sale|savings)\b",
    r"\bsex(?:ual)? (?:health|education)\b",
    r"\bsuicide (?:prevention|awareness)\b",
];

/// `(category, severity, pattern)`, matched on normalised text with idioms masked.
const RULES: &[(&str, u8, &str)] = &[
    // ---- Violence
    (
        "Violence",
        6,
        r"\b(?:i|we|they|he|she)(?:'ll| will| am going to| are going to|'m going to|'re going to| is going to| gonna|'m gonna|'re gonna| want to| wanna)\s+(?:kill|murder|shoot|stab|hurt|beat|attack|strangle|burn|bomb|slaughter|execute|destroy|break|cut)\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:kill|murder|shoot|stab|strangle|behead|slaughter|execute|gun down|massacre|torture|beat up|kidnap|choke|hang)\s+(?:you|him|her|them|everyone|everybody|people|anyone|the staff|the customers|all of (?:you|them)|your (?:family|kids|children|wife|husband)|those \w+|every \w+)\b",
    ),
    ("Violence", 6, r"\b(?:make|build|making|building) (?:a |an )?(?:pipe )?(?:bomb|explosive|molotov)s?\b"),
    (
        "Violence",
        6,
        r"\b(?:bomb|shoot up|blow up|attack|burn down|torch) (?:the|a|this|that|our|your|their) (?:school|mall|store|office|church|mosque|synagogue|temple|stadium|concert|building|shop|house|home|station|airport|plane|bus|train|crowd)\b",
    ),
    ("Violence", 6, r"\bwe know where you live\b"),
    (
        "Violence",
        6,
        r"\b(?:you|they) (?:will|are going to|gonna|should|deserve to|must) (?:die|bleed|be killed|be shot|get hurt|be hurt)\b",
    ),
    ("Violence", 6, r"\bburn (?:it|them|the place|your house|their house|you|him|her) (?:down|alive)\b"),
    (
        "Violence",
        4,
        r"\b(?:murder(?:ed|s|ing|er|ers)?|massacred?|behead(?:ed|ing)?|stabb(?:ed|ing)|shooting spree|mass shooting|school shooting|bloodbath|slaughter(?:ed|ing)?|tortur(?:e|ed|ing)|assault(?:ed|ing)?|lynch(?:ed|ing)?|kidnapp(?:ed|ing)|hostages?|terror(?:ist|ists|ism)|bomb threat|genocide|beaten to death|bled to death|bleed out)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:beat|punch|kick|smash|break|bash|slash) (?:you|him|her|them|his|her|their|your) (?:up|face|faces|head|heads|teeth|legs|skull|kneecaps)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:guns?|rifles?|knife|knives|machetes?|weapons?|bombs?|explosives?)\b[^.!?]{0,40}\b(?:kill|hurt|attack|stab|shoot|maim|wound|harm)\s+VICTIM\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:kill|hurt|attack|stab|shoot|maim|wound|harm)\s+VICTIM\b[^.!?]{0,40}\b(?:guns?|rifles?|knife|knives|machetes?|weapons?|bombs?|explosives?)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:break|broke|smash|smashed) (?:every|all) (?:bone|bones)\b|\bbroken bones\b|\bblood everywhere\b|\bcovered in blood\b|\bgore\b",
    ),
    ("Violence", 4, r"\b(?:set fire to|set on fire|torch) (?:him|her|them|you|people|the \w+)\b"),
    (
        "Violence",
        4,
        r"\byou(?:'ll| will) (?:pay for this|regret this|suffer)\b|\bor else\b[^.!?]{0,30}\b(?:hurt|regret|pay)\b",
    ),
    (
        "Violence",
        2,
        r"\b(?:kill|killed|kills|killing|die|dying|dead|death|blood|bloody|gun|guns|knife|weapon|fight|punch|violence|violent|war|attack)\b",
    ),
    (
        "Violence",
        6,
        r"\b(?:beat|hurt|kick|stab|shoot|kill) (?:you|him|her|them) (?:senseless|to death|to a pulp|black and blue|bloody|unconscious)\b",
    ),
    (
        "Violence",
        4,
        r"\b(?:i|we)(?:'m| am|'re| are| will|'ll) (?:going to |gonna )?(?:find|hunt|track) (?:you|him|her|them) down\b|\b(?:i|we)(?:'m| am|'re| are) going to find you\b",
    ),
    // ---- SelfHarm
    (
        "SelfHarm",
        6,
        r"\b(?:kill|killing|hurt|hurting|harm|harming|cut|cutting|starve|starving|hang|hanging|burn|burning|punish|punishing) (?:myself|yourself|yourselves|themselves|himself|herself|ourselves|urself)\b",
    ),
    ("SelfHarm", 6, r"\b(?:commit(?:ted|ting|s)?|attempt(?:ed|ing|s)?) suicide\b"),
    (
        "SelfHarm",
        6,
        r"\b(?:end|ending|take|taking|ended|took) (?:my|your|his|her|their) (?:own )?(?:life|lives)\b|\bend it all\b",
    ),
    (
        "SelfHarm",
        6,
        r"\b(?:i|you) (?:want|wanna|wanted|deserve) to die\b|\b(?:don't|do not|didn't) want to (?:live|be alive|exist|wake up)\b",
    ),
    (
        "SelfHarm",
        6,
        r"\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on)\b|\b(?:life|it) (?:is not|isn't|ain't) worth living\b|\bbetter off dead\b",
    ),
    (
        "SelfHarm",
        6,
        r"\bslit (?:my|your|his|her|their) wrists?\b|\b(?:overdose|od) on\b|\btake all (?:the|your|my) pills\b",
    ),
    ("SelfHarm", 6, r"\b(?:jump|jumping|leap) off (?:a|the) (?:bridge|roof|building|cliff|ledge)\b"),
    ("SelfHarm", 6, r"\bpro[- ]?(?:ana|mia)\b|\bthinspo\b|\bstop eating (?:until|till)\b"),
    (
        "SelfHarm",
        4,
        r"\bsuicid(?:e|es|al)\b|\bself[- ]?harm(?:ing)?\b|\bself[- ]?injur(?:y|ies|ing)\b|\boverdos(?:e|ed|ing)\b|\bbinge and purge\b|\bpurging\b|\bstarve\b",
    ),
    ("SelfHarm", 2, r"\b(?:eating disorders?|anorexi[ac]|bulimi[ac]|depressed|hopeless|worthless)\b"),
    ("SelfHarm", 6, r"\b(?:i|you) (?:want|wanna|need|am going|'m going) to end it\b|\bhunger is weakness\b"),
    (
        "SelfHarm",
        4,
        r"\b(?:skip|skipping|skipped) meals for (?:days|a week|weeks)\b|\bdisappear(?:ed)? forever\b|\bnobody would (?:care|notice) if i\b",
    ),
    // ---- Sexual
    (
        "Sexual",
        6,
        r"\b(?:porn|porno|pornography|pornographic|xxx|hardcore sex|explicit sex|sex tapes?|send nudes|nudes|rape|raped|raping|molest(?:ed|ing|ation)?|incest|child sex)\b",
    ),
    (
        "Sexual",
        4,
        r"\b(?:sex|sexual(?:ly)?|naked|nude|nudity|erotic|erotica|orgasms?|horny|aroused|arousal|hook ?ups?|one[- ]night stands?|strip clubs?|strippers?|escort services?|escorts|fetish(?:es)?|bdsm|genitals?|penis|vagina|boobs|tits|dildos?|vibrators?|sex toys?|nsfw|onlyfans|make love|sleep with me|in bed with me|get you in bed|undress(?:ed|ing)?|masturbat\w*|threesome|x-rated|adults only)\b",
    ),
    (
        "Sexual",
        2,
        r"\b(?:sexy|sensual|seductive|seduce|lingerie|flirty|flirt|steamy|naughty|kinky|lust|lusty|hot body|bikini body|intimate|intimates|bedroom fun)\b",
    ),
    // ---- Hate
    (
        "Hate",
        6,
        r"\bGROUP (?:should|must|need to|ought to) be (?:rounded up|deported|banned|locked up|expelled|removed|kicked out|thrown out|shot|killed|gassed|exterminated|wiped out|eliminated|sterilised|sterilized)\b",
    ),
    (
        "Hate",
        6,
        r"\b(?:kill|exterminate|eradicate|wipe out|gas|deport|get rid of|purge|eliminate|round up|lock up|hang) (?:all |every |the |those )*GROUP\b",
    ),
    (
        "Hate",
        6,
        r"\bGROUP (?:are|is|r)\b[^.!?]{0,30}?\b(?:disgusting|vile|subhuman|vermin|animals|subhuman|sub-human|parasites|rats|cockroaches|a disease|a plague|filth|scum|savages|inferior|trash|garbage|evil|dirty|criminals|rapists|terrorists|a cancer|less than human|stupid|dogs|pigs|apes|monkeys)\b",
    ),
    (
        "Hate",
        6,
        r"\bGROUP (?:should|must|deserve to|need to) (?:die|be killed|be shot|burn|be gassed|be exterminated|be wiped out)\b",
    ),
    (
        "Hate",
        6,
        r"\b(?:ethnic cleansing|racial purity|race traitors?|master race|inferior races?|white power|white supremacy|heil|sieg heil|gas chambers?)\b",
    ),
    (
        "Hate",
        4,
        r"\b(?:ban|ban all|keep out|keep out all|kick out|kick out all) GROUP\b|\bno GROUP (?:allowed|welcome|permitted|here)\b",
    ),
    (
        "Hate",
        4,
        r"\bGROUP (?:are )?(?:not welcome|need not apply|don't belong|do not belong|should go back|go home|aren't welcome|are not welcome|aren't people|are not people|can't be trusted|cannot be trusted|ruin everything|are ruining|are destroying|are a burden)\b",
    ),
    (
        "Hate",
        4,
        r"\bgo back to (?:your|their|where you came|where they came)\b|\b(?:your|their) kind (?:isn't|is not|aren't|are not) welcome\b",
    ),
    (
        "Hate",
        4,
        r"\b(?:i|we) (?:hate|despise|can't stand) (?:all |the |those )?GROUP\b|\bGROUP (?:don't|do not|shouldn't|should not) (?:deserve|have rights|get rights|vote|be allowed)\b",
    ),
    (
        "Hate",
        4,
        r"\b(?:only|for) (?:real|true|pure) (?:americans|britons|brits|germans|whites|christians)\b|\bwhites? only\b",
    ),
    (
        "Hate",
        2,
        r"\b(?:racist|racism|sexist|sexism|bigot(?:s|ry)?|homophobic|xenophobic|antisemitic|antisemitism|supremacist)\b",
    ),
];

struct Rule {
    category: &'static str,
    severity: u8,
    re: Regex,
}

fn compile(p: &str) -> Regex {
    let p = p
        .replace("PEOPLE", families::PEOPLE)
        .replace("METAPHOR", families::METAPHOR)
        .replace("BRIDGE", families::BRIDGE)
        .replace("INSULT", families::INSULT)
        .replace("GROUP", GROUP)
        .replace("VICTIM", VICTIM);
    // Patterns are constants of this module, all compiled by its tests.
    Regex::new(&format!("(?i){p}")).unwrap_or_else(|e| panic!("offline pattern {p:?}: {e}"))
}

static IDIOM_RES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| IDIOMS.iter().chain(families::IDIOMS).map(|p| compile(p)).collect());
static RULE_RES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    RULES
        .iter()
        .chain(families::RULES)
        .map(|(category, severity, p)| Rule { category, severity: *severity, re: compile(p) })
        .collect()
});
static FRAUD_RES: LazyLock<Vec<(&'static str, bool, Regex)>> =
    LazyLock::new(|| families::FRAUD.iter().map(|(name, strong, p)| (*name, *strong, compile(p))).collect());

/// Characters that render as nothing and are used to split a word past a pattern.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Lower-case, straighten quotes, undo l33t spellings inside words (`k1ll` → `kill`), collapse spacing.
pub fn normalise(text: &str) -> String {
    let chars: Vec<char> = text.chars().filter(|c| !invisible(*c)).collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let letter = |o: Option<char>| o.is_some_and(|c| c.is_alphabetic());
        let digit = |o: Option<char>| o.is_some_and(|c| c.is_ascii_digit());
        // A digit or symbol between letters (not next to other digits) is a disguised letter.
        let in_word =
            (letter(prev) && letter(next)) || (letter(prev) && !digit(next)) || (letter(next) && !digit(prev));
        let mapped = match c {
            '\u{2018}' | '\u{2019}' | '`' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            '0' if in_word && !digit(prev) && !digit(next) => 'o',
            '1' | '!' if in_word && letter(prev) && letter(next) => 'i',
            '3' if in_word && !digit(prev) && !digit(next) => 'e',
            '4' | '@' if in_word && letter(prev) && letter(next) => 'a',
            '$' | '5' if in_word && letter(prev) && letter(next) => 's',
            '7' if in_word && letter(prev) && letter(next) => 't',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        for l in mapped.to_lowercase() {
            if !(l == ' ' && out.ends_with(' ')) {
                out.push(l);
            }
        }
    }
    out
}

/// What the offline screener found in a text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Severity per category (every category of [`CATEGORIES`]).
    pub severities: BTreeMap<String, u8>,
    /// Rules that scored ≥ 4, with the matched words (for explanations in `cpo safety screen`).
    pub fired: Vec<String>,
    /// Fraud cues that flag the text (`offline-fraud:<cue>`), reported as provider-side blocklist hits.
    pub fraud: Vec<String>,
}

/// `text` with homoglyphs, accents, zero-width and other confusable characters replaced by plain letters
/// (`decancer`), or `None` when it cannot be read that way.
fn decancered(text: &str) -> Option<String> {
    let options = decancer::Options::default().disable_bidi();
    decancer::cure(text, options).ok().map(|c| c.to_string())
}

fn analyse_reading(t: &str, out: &mut Analysis) {
    let mut t = t.to_string();
    for re in IDIOM_RES.iter() {
        t = re.replace_all(&t, " ~ ").into_owned();
    }
    for r in RULE_RES.iter() {
        if let Some(m) = r.re.find(&t) {
            let e = out.severities.entry(r.category.to_string()).or_insert(0);
            if r.severity > *e {
                *e = r.severity;
            }
            let why = format!("{} {}: {:?}", r.category, r.severity, m.as_str());
            if r.severity >= 4 && !out.fired.contains(&why) {
                out.fired.push(why);
            }
        }
    }
    let cues: Vec<(&str, bool)> =
        FRAUD_RES.iter().filter(|(_, _, re)| re.is_match(&t)).map(|(name, strong, _)| (*name, *strong)).collect();
    let weak = cues.iter().filter(|(_, strong)| !strong).count();
    for (name, strong) in cues {
        let hit = format!("offline-fraud:{name}");
        if (strong || weak >= 2) && !out.fraud.contains(&hit) {
            out.fraud.push(hit);
        }
    }
}

/// Everything the offline screener finds in `text`: both readings (as written, and with confusables
/// replaced), the worse of the two per category. `None` when the text cannot be normalised, which the
/// provider reports as an error (so the text is blocked, never approved unread).
pub fn analyse_full(text: &str) -> Option<Analysis> {
    let mut out =
        Analysis { severities: CATEGORIES.iter().map(|c| (c.to_string(), 0)).collect(), ..Analysis::default() };
    analyse_reading(&normalise(text), &mut out);
    let plain = decancered(text)?;
    analyse_reading(&normalise(&plain), &mut out);
    Some(out)
}

/// Severity per category of `text`, and the rules that fired (for explanations in `cpo safety screen`).
/// A text that cannot be normalised gets the highest severity in every category.
pub fn analyse(text: &str) -> (BTreeMap<String, u8>, Vec<String>) {
    match analyse_full(text) {
        Some(a) => {
            let mut fired = a.fired;
            fired.extend(a.fraud.iter().map(|f| format!("Fraud: {f}")));
            (a.severities, fired)
        }
        None => (CATEGORIES.iter().map(|c| (c.to_string(), 6)).collect(), vec!["text cannot be normalised".into()]),
    }
}

/// The offline provider.
#[derive(Debug, Clone, Default)]
pub struct Offline;

#[async_trait]
impl Screener for Offline {
    fn name(&self) -> &str {
        "offline"
    }
    fn model(&self) -> String {
        LEXICON_VERSION.to_string()
    }
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError> {
        let a = analyse_full(text).ok_or_else(|| ScreenError::Unparseable("text cannot be normalised".into()))?;
        Ok(Scores { severities: a.severities, blocklist_hits: a.fraud, ..Scores::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max(text: &str) -> (String, u8) {
        let (s, _) = analyse(text);
        s.into_iter().max_by_key(|(_, v)| *v).unwrap_or_default()
    }

    #[test]
    fn marketing_idioms_pass() {
        for t in [
            "Killer deals all weekend long!",
            "A winter coat to die for.",
            "Our runners are crushing it this season.",
            "Questions? Shoot us a message.",
            "Drop-dead gorgeous boots, now 30% off.",
            "Beat the cold with our thermal layers.",
            "Treat yourself to a bath bomb set.",
            "Blood orange and ginger tea is back.",
            "Prices slashed on every jacket.",
            "Our chef's knife won't hurt your budget.",
            "No girls' night is complete without our fleece socks.",
        ] {
            assert!(max(t).1 < 4, "{t}: {:?}", analyse(t));
        }
    }

    #[test]
    fn harm_is_scored_in_its_category() {
        assert_eq!(max("Buy now or we will kill you"), ("Violence".into(), 6));
        assert_eq!(max("Sometimes I just want to kill myself"), ("SelfHarm".into(), 6));
        assert_eq!(max("Hot singles want explicit sex tonight"), ("Sexual".into(), 6));
        assert_eq!(max("Immigrants are vermin"), ("Hate".into(), 6));
        assert_eq!(max("We will k1ll you"), ("Violence".into(), 6), "leetspeak is undone");
    }

    #[test]
    fn fraud_needs_a_strong_cue_or_two_weak_ones() {
        let fraud = |t: &str| analyse_full(t).map(|a| a.fraud).unwrap_or_default();
        assert_eq!(fraud("Reply with your PIN to unlock your rewards."), ["offline-fraud:credential-request"]);
        assert!(fraud("Your account will be suspended.").is_empty(), "one weak cue is ordinary copy");
        assert!(fraud("Update your card details to keep your subscription running.").is_empty());
        let two = fraud("Update your card details to avoid suspension.");
        assert_eq!(two, ["offline-fraud:account-threat", "offline-fraud:payment-pressure"]);
    }

    #[test]
    fn group_words_and_metaphors_apart_pass() {
        for t in [
            "Pest control made easy: humane mouse traps are back.",
            "Eid Mubarak to all our Muslim customers: free gift wrapping this week.",
            "Our women's running collection, now with flea-proof dog beds.",
            "Flu virus season: stock up on tissues.",
            "Immigrant-owned and proud: meet the family behind our spice blends.",
        ] {
            assert!(max(t).1 < 4, "{t}: {:?}", analyse(t));
        }
        assert_eq!(max("Refugees breed like rats."), ("Hate".into(), 6));
        assert_eq!(max("Like termites, immigrants hollow out our towns."), ("Hate".into(), 6));
    }

    #[test]
    fn every_category_is_reported() {
        let (s, _) = analyse("Hello");
        assert_eq!(s.len(), CATEGORIES.len());
        assert!(s.values().all(|v| *v == 0));
    }

    #[test]
    fn normalise_keeps_prices_and_fixes_disguises() {
        assert_eq!(normalise("Save $50 on 3 items"), "save $50 on 3 items");
        assert_eq!(normalise("K1LL  th3m"), "kill them");
    }
}
